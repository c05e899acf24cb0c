"""`python -m semclip_train` and `torchrun --nproc-per-node N -m semclip_train`: the same flags as
`semclip-train`."""

from semclip_train.training.cli import main

if __name__ == "__main__":
    main()
