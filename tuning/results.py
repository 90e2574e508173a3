"""A sweep's results: the best trials as a Markdown table and JSON, and the
best hyperparameters for `train.py --hparams`.

    records = collect(project)                  # one dict per trial.json
    table = ranking(records, "val_loss")        # finished trials, best first, one per configuration
    write(project, meta, records, top=10)       # results.md, results.json (atomic)
    export_best(path, meta, records)            # {"hparams": {...}, "trial_id", "score", ...}

`meta` is the sweep's settings (sweep.json: stage, objective, space,
max_epochs, factor, train_images, val_images, hparams). A record:

    trial_id, status (Keras Tuner's: COMPLETED, FAILED, INVALID, RUNNING),
    score (float; +-inf for a diverged trial), values (the hyperparameters,
    without tuner/*), epochs, initial_epoch, continues (the trial it
    continues, or None), metrics {name: value}, worker (KERASTUNER_TUNER_ID
    that ran it, or None), message (first line of a failure, or None)

Hyperband trains a configuration in several trials (each continuing the
last); the table keeps each configuration's best trial. A diverged trial
(NaN / Inf loss: objectives.worst) and a failed one are listed apart.
"""

import glob
import json
import math
import os

from cityscapes.options import RUN_RECORD
from mrcnn import files
from tuning import layout, objectives, spaces


def _metric_values(metrics_config):
    """{name: last observed value} of a Keras Tuner MetricsTracker config."""
    out = {}
    for name, history in (metrics_config or {}).get("metrics", {}).items():
        observations = sorted(history.get("observations", []), key=lambda o: o["step"])
        if observations:
            value = observations[-1]["value"]
            out[name] = float(value[-1] if isinstance(value, list) else value)
    return out


def record_of(state, worker=None):
    """A record from a trial.json state (and its worker.json, if any)."""
    values = state["hyperparameters"]["values"]
    message = (state.get("message") or "").strip()
    return {
        "trial_id": state["trial_id"], "status": state["status"],
        "score": None if state.get("score") is None else float(state["score"]),
        "values": spaces.hyperparameters(values), "epochs": values.get("tuner/epochs"),
        "initial_epoch": values.get("tuner/initial_epoch"),
        "continues": values.get("tuner/trial_id"),
        "metrics": _metric_values(state.get("metrics")),
        "worker": (worker or {}).get("tuner_id"),
        "message": message.splitlines()[-1] if message else None,
    }


def collect(project):
    """Records of every trial of a project folder, by trial id."""
    records = []
    for path in sorted(glob.glob(os.path.join(project, "trial_*", "trial.json"))):
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
        worker_path = layout.worker_file(project, state["trial_id"])
        worker = None
        if os.path.exists(worker_path):
            with open(worker_path, encoding="utf-8") as f:
                worker = json.load(f)
        record = record_of(state, worker)
        record["options"] = _trained_options(project, state["trial_id"])
        records.append(record)
    return records


def _trained_options(project, trial_id):
    """The train.py options a trial trained with (its run folder's
    train_args.json, written by the hypermodel), or None."""
    path = os.path.join(layout.run_dir(project, trial_id), RUN_RECORD)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f).get("options")


def diverged(record):
    return record["status"] == "COMPLETED" and (
        "non_finite_epoch" in record["metrics"] or record["score"] is None
        or not math.isfinite(record["score"]))


def finished(record):
    return record["status"] == "COMPLETED" and not diverged(record)


def _key(values):
    return json.dumps(values, sort_keys=True)


def ranking(records, objective):
    """Finished trials, best score first, one (the best) per configuration."""
    reverse = objectives.DIRECTIONS[objective] == "max"
    ranked, seen = [], set()
    for r in sorted(filter(finished, records), key=lambda r: r["score"], reverse=reverse):
        if _key(r["values"]) not in seen:
            seen.add(_key(r["values"]))
            ranked.append(r)
    return ranked


def shown_values(values):
    """A trial's hyperparameters as the table shows them: a COCO trial,
    whose backbone hyperparameter is inactive, trained ResNet-101."""
    shown = dict(values)
    if shown.get("weights") == "coco" and "backbone" not in shown:
        shown["backbone"] = spaces.COCO_BACKBONE
    return shown


def format_value(value):
    """3 significant digits for numbers (1e-05, 0.953), strings as they are."""
    if isinstance(value, float):
        return f"{value:.3g}"
    return "" if value is None else str(value)


def format_score(objective, score):
    return f"{score:.3f}" if objective == "val_ap" else f"{score:.4f}"


def _columns(meta, rows):
    names = list(meta.get("space", {}))
    for r in rows:
        names += [n for n in shown_values(r["values"]) if n not in names]
    return names


def _table(header, align, lines):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    return out + ["| " + " | ".join(cells) + " |" for cells in lines]


def to_markdown(meta, records, top=10):
    """results.md: the sweep's settings, its best `top` configurations, then
    the diverged and failed trials. -> str"""
    objective = meta["objective"]
    ranked = ranking(records, objective)
    gone = [r for r in records if diverged(r)]
    failed = [r for r in records if r["status"] in ("FAILED", "INVALID")]
    unfinished = [r for r in records if r["status"] not in ("COMPLETED", "FAILED", "INVALID")]
    better = "lower" if objectives.DIRECTIONS[objective] == "min" else "higher"
    lines = [
        f"# Hyperband sweep `{meta.get('project', '')}`: {meta['stage']} stage", "",
        f"Objective: {objective} ({better} is better; a trial's best epoch). "
        f"{meta['train_images'] or 'all'} train / {meta['val_images'] or 'all'} val images, "
        f"at most {_count(meta['max_epochs'], 'epoch')} per model, factor {meta['factor']}. "
        f"{_count(len(records), 'trial')}: {sum(map(finished, records))} finished, {len(gone)} "
        f"diverged (NaN / Inf loss), {len(failed)} failed"
        + (f", {len(unfinished)} unfinished." if unfinished else "."), "",
    ]
    if meta.get("hparams"):
        fixed = ", ".join(f"{k}={format_value(v)}" for k, v in sorted(meta["hparams"].items()))
        lines += [f"Base options (--hparams): {fixed}.", ""]
    if ranked:
        shown = ranked[:top]
        columns = _columns(meta, shown)
        header = ["rank", "trial"] + columns + ["epochs", objective]
        align = ["---:", "---"] + ["---"] * len(columns) + ["---:", "---:"]
        cells = [[str(i + 1), r["trial_id"]]
                 + [format_value(shown_values(r["values"]).get(c)) for c in columns]
                 + [str(r["epochs"]), format_score(objective, r["score"])]
                 for i, r in enumerate(shown)]
        lines += [f"## Best {len(shown)} of {len(ranked)} configurations", ""]
        lines += _table(header, align, cells) + [""]
    else:
        lines += ["No trial has finished with a finite score yet.", ""]
    if gone:
        columns = _columns(meta, gone)
        cells = [[r["trial_id"]] + [format_value(shown_values(r["values"]).get(c))
                                    for c in columns]
                 + [_diverged_at(r)] for r in gone]
        lines += ["## Diverged (NaN / Inf loss)", ""]
        lines += _table(["trial"] + columns + ["at"], ["---"] * (len(columns) + 2), cells)
        lines += [""]
    if failed:
        cells = [[r["trial_id"], r["status"], (r["message"] or "").replace("|", "/")]
                 for r in failed]
        lines += ["## Failed", ""] + _table(["trial", "status", "error"], ["---"] * 3, cells)
        lines += [""]
    return "\n".join(lines)


def _count(n, noun):
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _diverged_at(record):
    epoch = record["metrics"].get("non_finite_epoch")
    return "" if epoch is None else f"epoch {epoch:g}"


def _finite(obj):
    """obj with non-finite floats as None (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def to_json(meta, records):
    """results.json: settings, the ranking (best first) and every trial. -> dict"""
    objective = meta["objective"]
    best = [dict(r, rank=i + 1, options=trial_options(meta, r))
            for i, r in enumerate(ranking(records, objective))]
    return _finite({"sweep": meta, "objective": objective,
                    "direction": objectives.DIRECTIONS[objective], "best": best,
                    "diverged": [r["trial_id"] for r in records if diverged(r)],
                    "trials": records})


def write(project, meta, records, top=10):
    """Write results.md and results.json into the project folder. -> their paths"""
    md, js = layout.results_files(project)
    files.write_text(md, to_markdown(meta, records, top))
    files.write_text(js, json.dumps(to_json(meta, records), indent=2, allow_nan=False) + "\n")
    return md, js


def trial_options(meta, record):
    """The train.py options that train a trial again: those it trained with
    (dataset, subsets and their seed, image size, ...; else the sweep's
    options with the trial's values), for its number of epochs in one
    stage. -> dict"""
    base = record.get("options") or meta.get("train_options")
    options = spaces.exported_options(record["values"], base)
    if record.get("epochs"):
        options.update(epochs=int(record["epochs"]), schedule=None)
    return options


def best_export(meta, records):
    """What --export_best writes, or None when no trial has finished. -> dict"""
    ranked = ranking(records, meta["objective"])
    if not ranked:
        return None
    best = ranked[0]
    return {"hparams": trial_options(meta, best),
            "trial_id": best["trial_id"], "objective": meta["objective"],
            "score": best["score"], "epochs": best["epochs"], "stage": meta["stage"],
            "project": meta.get("project")}


def export_best(path, meta, records):
    """Write the best trial's options for `train.py --hparams PATH`. -> the dict,
    or None (nothing written) when no trial has finished."""
    export = best_export(meta, records)
    if export is not None:
        files.write_text(path, json.dumps(export, indent=2) + "\n")
    return export
