"""webdet: LabelImg annotations to a live in-browser object detector."""
from setuptools import find_packages, setup

setup(
    name="webdet",
    version="0.1.0",
    description="From LabelImg (Pascal VOC) annotations to an object detector running live in the browser.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.12",
    packages=find_packages(include=["webdet", "webdet.*", "data_prep", "data_prep.*",
                                    "training", "training.*", "export", "export.*"]),
    install_requires=[
        "tensorflow>=2.19,<2.20",
        "tf-keras>=2.19,<2.20",
        "tf-models-official>=2.19,<2.20",
        "tensorflowjs==4.22.0",
        "pandas",
        "lxml",
        "Pillow",
        "matplotlib",
        "pycocotools",
        "pyyaml",
        "tqdm",
        "fastapi",
        "uvicorn",
        "python-multipart",
        "rq>=2",
        "redis",
    ],
    extras_require={"kaggle": ["kaggle"]},
    entry_points={"console_scripts": ["webdet=webdet.cli:main"]},
)
