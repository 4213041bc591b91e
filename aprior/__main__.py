"""``python -m aprior``: the command-line tool (also the entry point of
``torchrun --nproc-per-node N -m aprior train ...``)."""

from aprior.cli.main import main

if __name__ == "__main__":
    main()
