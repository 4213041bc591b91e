"""``aprior models``: parameter counts and tensor shapes of the networks, per size preset."""

from __future__ import annotations

import typer

from aprior.cli._common import handle_errors


def register(app: typer.Typer) -> None:
    @app.command("models")
    @handle_errors
    def models(
        name: str = typer.Argument(None, help="Model name (dacno2, deepcams-temporal, deepcams-spatial); all when omitted.", show_default=False),
        preset: str = typer.Option("paper", "--preset", help="Size preset: paper, small or tiny (DACNO2 also medium)."),
        all_presets: bool = typer.Option(False, "--all-presets", help="Show every preset of each model."),
    ) -> None:
        """Show the parameters per part and the tensor shapes along the forward pass of a
        network (all networks when NAME is omitted). Nothing is allocated: shapes come from
        a dry run without data.
        """
        from aprior.errors import ConfigError
        from aprior.models.summary import MODEL_SUMMARIES, get_summary, model_presets

        if name is not None and name not in MODEL_SUMMARIES:
            raise ConfigError(f"unknown model {name!r}; known: {', '.join(MODEL_SUMMARIES)}")
        names = [name] if name is not None else list(MODEL_SUMMARIES)
        blocks = []
        for model in names:
            try:
                for p in model_presets(model) if all_presets else (preset,):
                    blocks.append(get_summary(model, p).render())
            except ImportError as exc:  # a network module not installed or not written yet
                if name is not None:
                    raise ConfigError(f"model {model!r} is unavailable: {exc}") from None
                blocks.append(f"{model}: unavailable ({exc})")
        typer.echo("\n\n".join(blocks))
