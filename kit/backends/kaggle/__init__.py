"""The Kaggle backend, by idea: session.py (credentials, the client, retries and kit's errors), backend.py
(KaggleBackend), competition.py (the public board and data files), doctor.py (`kit doctor`), deps.py (`kit deps
push`'s wheel dataset) and upload.py (byte progress of the client's uploads). Import the module you need; this
package imports nothing, so `import kit.backends.kaggle` stays light."""
