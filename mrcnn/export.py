"""Export a trained model as a TensorFlow SavedModel, for TF Serving or any
TensorFlow program: python -m mrcnn.export.

    python -m mrcnn.export --weights last --output exported/demo
    python -m mrcnn.export --weights coco --output exported/coco/1

The SavedModel holds the whole detection in one graph (resize,
normalisation, the network, un-molding and mask pasting;
mrcnn/modeling/serving.py) and loads with `tf.saved_model.load` alone: no
Keras, no code of this project. Its signatures:

    serving_default  image uint8 [H, W, 3], any size ->
                     boxes int32 [N, (y1, x1, y2, x2)] in the image's pixels,
                     class_ids int32 [N], scores float32 [N],
                     masks uint8 [N, H, W] (0 / 1), num_detections int32 []
    serving_batch    images uint8 [B, H, W, 3], one size -> the same with a
                     leading B, N the most detections of any image (rows past
                     an image's num_detections are zeros), num_detections [B]

Class ids are the model's (its run's train_args.json names them; COCO's
are mrcnn.checkpoint.pretrained.COCO_CLASS_NAMES). docs/predict.md shows
how to serve it. Exit codes: 0 done; 2 bad input.
"""

import sys

from mrcnn import command, staging

SIGNATURES = ("serving_default", "serving_batch")


def build_parser():
    p = command.Parser("python -m mrcnn.export", __doc__)
    command.add_model_flags(p)
    p.add_argument("--output", required=True, metavar="DIR",
                   help="the SavedModel folder (replaced as a whole when the export succeeds)")
    return p


def export_saved_model(model, directory):
    """Write an inference `MaskRCNN` as a SavedModel into `directory`
    (replaced as a whole, or left as it was if the export fails)."""
    import keras
    import tensorflow as tf

    from mrcnn.modeling.serving import Molding, detect_images

    molding, net = Molding.of(model.config), model.keras_model

    # Traced once: the one-picture signature calls the batched graph.
    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")])
    def batch(images):
        return detect_images(net, molding, images)

    def one_image(image):
        out = batch(image[None])
        n = out["num_detections"][0]
        return {k: v[0] if k == "num_detections" else v[0, :n] for k, v in out.items()}

    archive = keras.export.ExportArchive()
    archive.track(net)
    archive.add_endpoint(SIGNATURES[0], one_image,
                         input_signature=[tf.TensorSpec([None, None, 3], tf.uint8, name="image")])
    archive.add_endpoint(SIGNATURES[1], batch)
    with staging.staged(directory, log=print) as tmp:
        archive.write_out(tmp, verbose=False)


def work(args):
    path, config = command.model_source(args)
    model = command.detection_model(path, config, allow_partial=bool(args.allow_partial))
    export_saved_model(model, args.output)
    print(f"Exported {path} to {args.output} (signatures {', '.join(SIGNATURES)})")


def main(argv=None):
    return command.main(build_parser(), work, argv)


if __name__ == "__main__":
    sys.exit(main())
