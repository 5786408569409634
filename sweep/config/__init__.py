"""The config layer: the only importer of Hydra, and the only reader of the config object.

compose.py      composing conf/ with overrides (the tests' and the command line's check)
build.py        a composed config -> the validated sweep and the experiment it runs
values.py       the plain options of the config, checked
environment.py  the results folder, the dataset, the weights and the tracking server
"""

from omegaconf import OmegaConf

from sweep.store.objects import local_dir_of

# ${local_dir_of:${results_dir}}: this machine's own folder for a results_dir (conf/config.yaml).
OmegaConf.register_new_resolver("local_dir_of", local_dir_of, replace=True)
