"""kit: fine-tune LLMs for Kaggle competitions from a local repository.

`import kit` stays light: no torch, no kaggle client, no network, no files created.
"""

__version__ = "0.1.0"
