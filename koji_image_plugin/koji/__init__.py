"""What the three Koji plugins share: a request as the hub checks it (``request.py``),
one arch of a hub build (``archbuild.py``, ``workdir.py``), the record a Koji build
keeps (``record.py``, ``archivetypes.py``) and how it reads (``info.py``). Nothing here
imports the koji library, boto3 or openstacksdk: the hub plugin loads it."""
