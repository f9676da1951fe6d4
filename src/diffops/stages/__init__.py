"""One module per dvc.yaml stage, named after it, and `score` (the evaluate metrics for any image set).
Each exposes `run(cfg, ...)` (read its params sections, open the tracked run, call the library, write its
outputs atomically, log) and `command`, its click command.

The command line is generated from these tables: command name -> module (diffops.stages.<module>).
A dvc.yaml stage's `cmd` names the command; `diffops <group> <name> --help` shows a runnable example.
"""
ROOT = {"generate": "generate", "prepare": "prepare", "featurenet": "featurenet", "train": "train",
        "sample": "sample", "evaluate": "evaluate", "check-raw": "check_raw", "convert": "convert",
        "encode": "encode", "vae": "vae", "train-latent": "train_latent", "sample-latent": "sample_latent",
        "evaluate-latent": "evaluate_latent", "reference": "reference", "score": "score",
        "summary": "summary", "erd-compare": "erd_compare"}
GROUPS = {
    "tiw": ("TIW-DSM on a biased dataset (dvc stages tiw_*): split, extractor, discriminator, losses, bias table.\n\n"
            "\b\nRun the whole comparison:  dvc repro tiw_table\nLook at the table:         cat metrics/tiw.md",
            {"split": "tiw_split", "extractor": "tiw_extractor", "discriminator": "tiw_discriminator", "train": "tiw_train",
             "sample": "tiw_sample", "table": "tiw_table", "seeds": "tiw_seeds"}),
    "diti": ("DiTi / PDAE representation learning on the frozen EDM model (params: diti.*).\n\n"
             "\b\nExample:  diffops diti train --method diti && diffops diti train --method pdae\n"
             "          diffops diti probe && diffops diti counterfactual && diffops diti manipulate",
             {"train": "train_representation", "probe": "diti_probe", "counterfactual": "diti_counterfactual",
              "manipulate": "diti_manipulation"}),
    "asyrp": ("Asyrp h-space editing on the frozen EDM model (params: asyrp.*; pipelines/asyrp-quickstart).\n\n"
              "\b\nExample:  diffops asyrp invert && diffops asyrp train && diffops asyrp edit",
              {"invert": "asyrp_invert", "train": "asyrp_train", "edit": "asyrp_edit"}),
}
