"""The build of one arch, stage by stage: the install (``oz/``), the base disk
(``disk.py``), the variants (``customize.py``), the conversions (``convert.py``,
``formats/``), the boot test of each variant as each of its clouds
(``boot/``) and the proof that every output is the
disk that booted (``verify.py``), in ``pipeline.py``; its typed results
(``results.py``) and records (``outputs.py``); local mode's whole build (``local.py``)."""
