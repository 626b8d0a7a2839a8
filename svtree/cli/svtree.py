"""svtree: the view of a supervision tree for humans and scripts (click).

Each command is a thin layer over the library; the daemontools-compatible
programs (svc, svstat, ...) stay free of click so they start fast.
"""

import sys
from pathlib import Path

import click

from .. import logview


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="svtree")
def svtree():
    """Look at and control a svtree (or daemontools or runit) service tree."""


@svtree.command()
@click.argument("service", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("-n", "--lines", "count", default=10, show_default=True, type=click.IntRange(0),
              help="How many of the last lines to show.")
@click.option("-f", "--follow", is_flag=True, help="Keep showing new lines, across rotations.")
@click.option("--raw", is_flag=True, help="Keep the TAI64N labels as they are.")
def logs(service, count, follow, raw):
    """Show SERVICE's log (its multilog directory) with local, human timestamps.

    SERVICE is a service directory (its log is looked for in log/ and in
    log/*/), or a log directory itself.
    """
    dirs = logview.logdirs(service)
    if not dirs:
        raise click.ClickException(f"no log directory with a current file in {service}")
    if follow and len(dirs) > 1:
        raise click.ClickException(f"{service} has several log directories; name one: "
                                   + ", ".join(str(d) for d in dirs))
    show = (lambda line: line) if raw else logview.humanize
    out = sys.stdout.buffer
    for d in dirs:
        lines, offset = logview.tail(d, count)
        for line in lines:
            out.write(show(line))
    out.flush()
    if follow:
        try:
            for line in logview.follow(dirs[0], offset):
                out.write(show(line))
                out.flush()
        except KeyboardInterrupt:
            pass


def main(argv=None) -> int:
    """Run the group; usage errors exit 100 and other errors 111, as in the
    daemontools-style programs (click's own codes would be 2 and 1)."""
    try:
        result = svtree.main(args=argv, prog_name="svtree", standalone_mode=False)
    except click.UsageError as e:
        e.show()
        return 100
    except click.ClickException as e:
        e.show()
        return 111
    except click.Abort:
        return 111
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
