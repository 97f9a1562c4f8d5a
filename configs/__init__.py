"""The built-in experiment configs (YAML), installed as package data of `webdet.configs`."""
