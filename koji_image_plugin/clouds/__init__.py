"""Where a build's images go: EC2 AMIs in every region (``ec2.py``, ``ebs.py``,
``s3import.py``), OpenStack Glance (``glance.py``), which image each cloud takes and the
records of where they went (``records.py``, ``uploads.py``). Only ``records.py`` is
loaded by the hub; boto3 and openstacksdk are imported by the modules that talk to them."""
