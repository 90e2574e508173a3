"""Helpers for tests that run the project's command lines in-process."""


def exit_code(main, argv):
    """A command's exit code: returned, or raised by its one-line usage error."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code
