"""``loopml init NAME``: a project folder with a pipeline that works on real data."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import click

from loopml.errors import InvalidParameterError

TEMPLATE_FILES = {
    "loopml.toml": "loopml.toml",
    "pipelines.py": "pipelines.py",
    "gitignore": ".gitignore",
    "README.md": "README.md",
}


@click.command()
@click.argument("name")
@click.option("--force", is_flag=True, help="Write into an existing, non-empty folder.")
def init(name: str, force: bool) -> None:
    """Create project NAME (or turn the current folder into one with `.`): loopml.toml and
    pipelines.py with a `train` pipeline.

    The example trains a scikit-learn regressor on the diabetes data set that ships
    with scikit-learn (no download) and logs RMSE, MAE and R². Existing files are never
    overwritten.

    \b
    Examples:
      loopml init churn && cd churn && loopml run train -p alpha=0.5
      loopml init .
    """
    here = name == "."
    if not here and (not name or "/" in name or name == ".." or name.startswith("-")):
        raise InvalidParameterError(
            f"Project name {name!r}: expected a folder name such as 'churn', or '.' for the "
            "current folder."
        )
    target = Path.cwd() if here else Path(name)
    project = target.resolve().name if here else name
    if not here and target.exists() and any(target.iterdir()) and not force:
        raise InvalidParameterError(
            f"Folder {str(target)!r} exists and is not empty; pick another name, use "
            f"`loopml init .` inside it, or pass --force (existing files are kept)."
        )
    if (target / "loopml.toml").exists():
        raise InvalidParameterError(
            f"{target.resolve()} is already a loopml project (it has loopml.toml)."
        )
    clashes = [dest for dest in TEMPLATE_FILES.values() if (target / dest).exists()]
    target.mkdir(parents=True, exist_ok=True)
    package = resources.files("loopml.cli") / "templates"
    for source, dest in TEMPLATE_FILES.items():
        if dest in clashes:
            continue  # never overwrite the user's own files
        text = (package / source).read_text(encoding="utf-8").replace("{{name}}", project)
        (target / dest).write_text(text, encoding="utf-8")
    click.echo(f"Created project {project!r} in {target.resolve()}")
    if clashes:
        click.echo(f"Kept your existing {', '.join(clashes)} (not overwritten).")
    go = "" if here else f"cd {name} && "
    click.echo(f"Next:  {go}loopml run train -p alpha=0.5 && loopml runs")
