"""Rea2Seg Studio's bundled files (demo project, prompts, models), installed as the package
``rea2seg_resources``. Read them through ``core.paths.resource_path``, never by a path of its own."""
