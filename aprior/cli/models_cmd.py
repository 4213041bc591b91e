"""``aprior models``: parameter counts and tensor shapes of the networks, per size preset."""

from __future__ import annotations

import typer

from aprior.cli._common import handle_errors

#: the presets every model config has (``--all-presets``)
PRESETS: tuple[str, ...] = ("paper", "small", "tiny")


def register(app: typer.Typer) -> None:
    @app.command("models")
    @handle_errors
    def models(
        name: str = typer.Argument(None, help="Model name (dacno2, deepcams-temporal, deepcams-spatial); all when omitted.", show_default=False),
        preset: str = typer.Option("paper", "--preset", help="Size preset: paper, small or tiny."),
        all_presets: bool = typer.Option(False, "--all-presets", help="Show every preset (paper, small, tiny)."),
    ) -> None:
        """Show the parameters per part and the tensor shapes along the forward pass of a
        network (all networks when NAME is omitted). Nothing is allocated: shapes come from
        a dry run without data.
        """
        from aprior.errors import ConfigError
        from aprior.models.summary import MODEL_SUMMARIES, get_summary

        if name is not None and name not in MODEL_SUMMARIES:
            raise ConfigError(f"unknown model {name!r}; known: {', '.join(MODEL_SUMMARIES)}")
        names = [name] if name is not None else list(MODEL_SUMMARIES)
        presets = PRESETS if all_presets else (preset,)
        blocks = []
        for model in names:
            for p in presets:
                try:
                    blocks.append(get_summary(model, p).render())
                except ImportError as exc:  # a network module not installed or not written yet
                    if name is not None:
                        raise ConfigError(f"model {model!r} is unavailable: {exc}") from None
                    blocks.append(f"{model}: unavailable ({exc})")
                    break
        typer.echo("\n\n".join(blocks))
