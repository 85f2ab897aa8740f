"""The boot test: each variant booted the way each of its clouds boots an instance.

``run.py`` boots one image as one profile (``spec/bootprofiles.py``): ``instance.py``
makes the instance's identity and ssh key, ``seeds.py`` the NoCloud seed and the
OpenStack config drive, ``metadata.py`` the EC2/Eucalyptus and CloudStack metadata
servers on loopback (``relay.py`` carries the guest's connections to them, ``netns.py``
gives the CloudStack guest its own loopback), ``machine.py`` the qemu command line,
``ssh.py`` the login, ``checks.py`` what is checked once logged in, ``diagnose.py`` why
a guest never let us in. ``schedule.py`` runs the boots of a build, several at once.
"""
