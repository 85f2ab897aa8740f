"""koji-image-plugin: cloud images as first-class Koji build artifacts."""

from setuptools import find_packages, setup

setup(
    name="koji-image-plugin",
    version="0.1.0",
    description="Build, boot-test and publish cloud images with Koji and Oz",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="LGPL-2.1-or-later",
    python_requires=">=3.11",
    packages=find_packages(include=["koji_image_plugin", "koji_image_plugin.*"]),
    package_data={"koji_image_plugin": ["data/*", "py.typed"]},
    install_requires=[
        "jsonschema>=4",
        "PyYAML>=6",
        # images.json of a drop is written and read with productmd (Fedora's compose metadata)
        "productmd>=1.33",
        # kickstarts are read and prepared with the parser anaconda and kojid use
        "pykickstart>=3.48",
    ],
    extras_require={
        # uploads (koji-image upload, kojid's uploadCloudImage): builders need them, the
        # hub and the CLI do not
        "clouds": ["boto3>=1.28", "openstacksdk>=1.0"],
    },
    entry_points={
        "console_scripts": ["koji-image = koji_image_plugin.command:main"],
    },
)
