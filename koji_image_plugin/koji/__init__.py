"""What the three Koji plugins share: a request as the hub checks it (``request.py``),
one arch of a hub build (``archbuild.py``, ``workdir.py``), the record a Koji build
keeps (``record.py``, ``archivetypes.py``) and how it reads (``info.py``); a kojid task's
run (``taskrun.py``, and ``tasklogs.py``, the builder's, which alone imports koji).
Nothing the hub plugin loads here imports koji, boto3 or openstacksdk."""
