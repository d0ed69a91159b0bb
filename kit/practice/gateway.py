"""kit's stand-in for Kaggle's `kaggle_evaluation` package, shipped with a practice server competition's files.

A practice competition made with `kit practice init --task answer --server` holds this file as
`kaggle_evaluation/practice_gateway.py` next to `kaggle_evaluation/<slug>_inference_server.py`, which defines
`<Comp>InferenceServer(predict)` with `serve()` and `run_local_gateway(data_paths)`, as the real package's
competitions do (aimo_3_inference_server.AIMO3InferenceServer). The behaviour follows the public sources of the
real package (core/templates.py, base_gateway.py, relay.py; competition-formats.md section 3):

- the gateway calls `predict` one row at a time, in shuffled order, as polars Series (id, problem);
- the first call has no deadline (the model loads then); every later one has the gateway's deadline;
- the server must accept a connection within the startup limit, counted from the notebook's start;
- an answer frame must have one row, the row's id in its first column and an integer answer;
- the gateway writes `submission.parquet` and, on a rerun, `result.json` with one of the same error classes.

One difference, on purpose: the transport. The real package speaks gRPC on port 50051 between two containers; this
one sends length-prefixed JSON frames over a Unix socket (KAGGLE_EVALUATION_SOCKET names it), which works between
two processes of this machine even when the notebook runs in a network namespace of its own (the rerun's internet
off) and needs no grpcio. Values travel as the real relay allows them: primitives, lists, tuples, dicts with text
keys, polars and pandas frames and Series (as Parquet), numpy arrays and scalars; anything else is refused. Two
simplifications: numpy values arrive as their Python values, and pandas frames as polars frames.

Stdlib and polars only: it runs inside the notebook, and kit's practice rerun imports it for the gateway's side.
It never imports kit.
"""

from __future__ import annotations

import base64
import enum
import io
import json
import os
import random
import socket
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Callable

STARTUP_LIMIT_SECONDS = 15 * 60  # the real relay's; a practice competition's server module may give another
DEFAULT_DEADLINE_SECONDS = 60 * 60
SOCKET_ENV = "KAGGLE_EVALUATION_SOCKET"
SHUTDOWN = "__shutdown__"
IS_RERUN = os.getenv("KAGGLE_IS_COMPETITION_RERUN") is not None
_STARTED = time.time()  # the notebook's start, as near as an import can tell (the real templates.py does the same)


class GatewayRuntimeErrorType(enum.Enum):
    """The error classes a rerun can end with (the real base_gateway's, same names and numbers)."""

    UNSPECIFIED = 0
    SERVER_NEVER_STARTED = 1
    SERVER_CONNECTION_FAILED = 2
    SERVER_RAISED_EXCEPTION = 3
    SERVER_MISSING_ENDPOINT = 4
    GATEWAY_RAISED_EXCEPTION = 5
    INVALID_SUBMISSION = 6


class GatewayRuntimeError(Exception):
    """A rerun's failure: its class (shown to the user) and details."""

    def __init__(self, error_type: GatewayRuntimeErrorType, error_details: str | None = None):
        super().__init__(f"{error_type.name}: {error_details or ''}".rstrip(": "))
        self.error_type = error_type
        self.error_details = error_details


# -- values on the wire --------------------------------------------------------------------------------------------

def encode(value):
    """A value as JSON, tagged with its type; TypeError for a type the real relay refuses too."""
    module = type(value).__module__.split(".")[0]
    if module == "numpy":  # a scalar or an array, sent as its values (no numpy needed on the other side)
        if value.dtype.kind not in "biuf":
            raise TypeError(f"numpy values of dtype {value.dtype} are not supported")
        return {"numpy": value.tolist()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"v": value}
    if isinstance(value, (list, tuple)):
        return {"list" if isinstance(value, list) else "tuple": [encode(v) for v in value]}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("only dicts with keys of type str can be sent")
        return {"dict": {k: encode(v) for k, v in value.items()}}
    if module == "polars" and type(value).__name__ in ("DataFrame", "Series"):
        import polars as pl

        frame = value if type(value).__name__ == "DataFrame" else value.to_frame()
        if any(dtype.base_type() in (pl.Object, pl.Enum) for dtype in frame.dtypes):
            raise TypeError(f"unsupported polars data type(s) in {frame.dtypes}")
        buffer = io.BytesIO()
        frame.write_parquet(buffer)
        return {"polars_" + type(value).__name__.lower(): base64.b64encode(buffer.getvalue()).decode()}
    if module == "pandas" and type(value).__name__ in ("DataFrame", "Series"):
        frame = value if type(value).__name__ == "DataFrame" else value.to_frame()
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return {"pandas_" + type(value).__name__.lower(): base64.b64encode(buffer.getvalue()).decode()}
    if isinstance(value, io.BytesIO):
        return {"bytes_io": base64.b64encode(value.getvalue()).decode()}
    raise TypeError(f"type {type(value)} is not supported by kaggle_evaluation")


def decode(obj):
    """The value `encode` tagged."""
    (tag, data), = obj.items()
    if tag == "v":
        return data
    if tag in ("list", "tuple"):
        items = [decode(v) for v in data]
        return items if tag == "list" else tuple(items)
    if tag == "dict":
        return {k: decode(v) for k, v in data.items()}
    if tag == "numpy":
        return data
    raw = base64.b64decode(data)
    if tag.startswith(("polars_", "pandas_")):  # pandas values arrive as polars ones (the gateway reads polars)
        import polars as pl

        frame = pl.read_parquet(io.BytesIO(raw))
        return frame if tag.endswith("_dataframe") else frame.to_series(0)
    if tag == "bytes_io":
        return io.BytesIO(raw)
    raise TypeError(f"unknown payload {tag!r}")


def _send(sock: socket.socket, message: dict) -> None:
    data = json.dumps(message).encode()
    sock.sendall(len(data).to_bytes(8, "big") + data)


def _receive(sock: socket.socket) -> dict:
    def exactly(n: int) -> bytes:
        chunks = bytearray()
        while len(chunks) < n:
            chunk = sock.recv(n - len(chunks))
            if not chunk:
                raise ConnectionError("the other side closed the connection")
            chunks += chunk
        return bytes(chunks)

    return json.loads(exactly(int.from_bytes(exactly(8), "big")))


# -- the notebook's side: the server -------------------------------------------------------------------------------

class _Server:
    """Answers requests on a Unix socket with the registered functions, one request at a time (as the real one)."""

    def __init__(self, listeners: tuple[Callable, ...]):
        if not listeners:
            raise ValueError("Must pass at least one endpoint listener, e.g. `predict`")
        for func in listeners:
            if not callable(func) or func.__name__ == "<lambda>":
                raise ValueError("Functions passed as endpoint listeners must be named functions")
        self.listeners = {func.__name__: func for func in listeners}
        self.done = threading.Event()
        self._sock: socket.socket | None = None

    def start(self, path: str) -> None:
        if os.path.exists(path):
            os.unlink(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(path)
        self._sock.listen(1)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.done.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        while True:
            try:
                request = _receive(conn)
            except (ConnectionError, OSError, ValueError):
                return
            if request["name"] == SHUTDOWN:
                _send(conn, {"ok": encode(None)})
                self.done.set()
                return
            func = self.listeners.get(request["name"])
            if func is None:
                _send(conn, {"error": f"No listener for {request['name']} was registered."})
                continue
            try:
                args = [decode(a) for a in request["args"]]
                kwargs = {k: decode(v) for k, v in request["kwargs"].items()}
                reply = {"ok": encode(func(*args, **kwargs))}
            except Exception as error:  # noqa: BLE001 (the gateway reports it as SERVER_RAISED_EXCEPTION)
                traceback.print_exc()
                reply = {"error": f"Exception calling application: {type(error).__name__}: {error}"}
            _send(conn, reply)

    def stop(self) -> None:
        self.done.set()
        if self._sock is not None:
            self._sock.close()


class InferenceServer:
    """What a competitor's notebook builds around its `predict`; each competition subclasses it with its gateway."""

    startup_limit_seconds = STARTUP_LIMIT_SECONDS

    def __init__(self, *endpoint_listeners: Callable):
        self.server = _Server(endpoint_listeners)
        self.gateway = None

    def serve(self) -> None:
        """Listen where the rerun's gateway connects; on a rerun, block until the gateway is done."""
        path = os.environ.get(SOCKET_ENV) or os.path.join(tempfile.gettempdir(), "kaggle_evaluation.sock")
        self.server.start(path)
        if IS_RERUN:
            self.server.done.wait()
            self.server.stop()

    def _get_gateway_for_test(self, data_paths=None):
        raise NotImplementedError

    def run_local_gateway(self, data_paths=None) -> None:
        """Run the competition's gateway here on `data_paths` (the visible test file): it writes submission.parquet;
        a failure raises its GatewayRuntimeError."""
        elapsed = time.time() - _STARTED
        if elapsed > self.startup_limit_seconds:
            print(f"warning: {int(elapsed)} seconds elapsed before server startup; the rerun's gateway allows "
                  f"{int(self.startup_limit_seconds)}: start the server before any slow step", flush=True)
        folder = tempfile.mkdtemp(prefix="kaggle-evaluation-")
        path = os.path.join(folder, "s")
        self.server.start(path)
        try:
            self.gateway = self._get_gateway_for_test(data_paths)
            self.gateway.connect(path)
            self.gateway.run()
        finally:
            self.server.stop()


# -- the gateway's side --------------------------------------------------------------------------------------------

class Client:
    """Sends requests to the notebook's server: waits up to the startup limit for it to listen, then gives every call
    after the first the gateway's deadline."""

    def __init__(self, path: str, startup_limit: float, alive: Callable[[], bool] = lambda: True, started: float | None = None):
        self.path, self.startup_limit, self.alive = path, startup_limit, alive
        self.started = time.time() if started is None else started
        self.deadline: float | None = None  # applies from the second call on
        self._sock: socket.socket | None = None
        self._calls = 0

    def connect(self) -> None:
        while True:
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(self.path)
                self._sock = sock
                return
            except OSError:
                sock.close()
            if not self.alive():
                raise GatewayRuntimeError(GatewayRuntimeErrorType.SERVER_NEVER_STARTED, "the notebook ended before its server started")
            if time.time() - self.started > self.startup_limit:
                raise GatewayRuntimeError(GatewayRuntimeErrorType.SERVER_NEVER_STARTED,
                                          f"Failed to connect to server after waiting {self.startup_limit:g} seconds")
            time.sleep(min(0.2, self.startup_limit / 20))

    def send(self, name: str, *args, **kwargs):
        if self._sock is None:
            self.connect()
        first = self._calls == 0
        self._calls += 1
        self._sock.settimeout(None if first or self.deadline is None else self.deadline)
        try:
            _send(self._sock, {"name": name, "args": [encode(a) for a in args], "kwargs": {k: encode(v) for k, v in kwargs.items()}})
            reply = _receive(self._sock)
        except socket.timeout:
            raise GatewayRuntimeError(GatewayRuntimeErrorType.SERVER_CONNECTION_FAILED,
                                      f"StatusCode.DEADLINE_EXCEEDED: no answer to {name} within {self.deadline:g} s") from None
        except (ConnectionError, OSError) as error:
            raise GatewayRuntimeError(GatewayRuntimeErrorType.SERVER_CONNECTION_FAILED, f"{type(error).__name__}: {error}") from None
        if "error" in reply:
            message = reply["error"]
            if message.startswith("No listener for"):
                raise GatewayRuntimeError(GatewayRuntimeErrorType.SERVER_MISSING_ENDPOINT, message)
            raise GatewayRuntimeError(GatewayRuntimeErrorType.SERVER_RAISED_EXCEPTION, message.removeprefix("Exception calling application: "))
        return decode(reply["ok"])

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.settimeout(5)
                _send(self._sock, {"name": SHUTDOWN, "args": [], "kwargs": {}})
                _receive(self._sock)
            except OSError:
                pass
            self._sock.close()
            self._sock = None


class AnswerGateway:
    """A practice competition's gateway: test.csv's rows one at a time in shuffled order, each answer a frame of one
    row (id, answer: an integer unless told otherwise) checked against its row's id; writes submission.parquet (and
    result.json on a rerun)."""

    def __init__(self, data_paths=None, deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
                 startup_limit_seconds: float = STARTUP_LIMIT_SECONDS, rerun: bool = IS_RERUN,
                 id_column: str = "id", answer_column: str = "answer", integer: bool = True):
        # the answer's column and whether it must be an integer (a label competition's gateway takes any value)
        self.id_column, self.answer_column, self.integer = id_column, answer_column, integer
        self.data_paths = tuple(data_paths or ())
        self.deadline_seconds, self.startup_limit_seconds, self.rerun = deadline_seconds, startup_limit_seconds, rerun
        self.client: Client | None = None

    def connect(self, path: str, alive: Callable[[], bool] = lambda: True, started: float | None = None) -> None:
        self.client = Client(path, self.startup_limit_seconds, alive, started)
        self.client.deadline = self.deadline_seconds

    def rows(self):
        import polars as pl

        if not self.data_paths:
            raise GatewayRuntimeError(GatewayRuntimeErrorType.GATEWAY_RAISED_EXCEPTION, "no test file given to the gateway")
        test = pl.read_csv(self.data_paths[0])  # types inferred, as AIMO's gateway reads its test.csv
        order = list(range(test.height))
        random.Random(int.from_bytes(os.urandom(4), "big")).shuffle(order)
        for i in order:
            row = test.slice(i, 1)
            yield row, row.select(self.id_column)

    def validate(self, answer, expected) -> None:
        import polars as pl

        if answer is None:
            raise GatewayRuntimeError(GatewayRuntimeErrorType.INVALID_SUBMISSION, "No prediction received")
        if type(answer).__module__.split(".")[0] == "pandas":
            answer = pl.from_pandas(answer)
        if not isinstance(answer, pl.DataFrame):
            raise GatewayRuntimeError(GatewayRuntimeErrorType.INVALID_SUBMISSION,
                                      f"predict returned {type(answer).__name__}, expected a DataFrame ({self.id_column}, {self.answer_column})")
        if answer.height != expected.height:
            raise GatewayRuntimeError(GatewayRuntimeErrorType.INVALID_SUBMISSION,
                                      f"Invalid predictions: expected {expected.height} rows but received {answer.height}")
        if self.id_column not in answer.columns or self.answer_column not in answer.columns:
            raise GatewayRuntimeError(GatewayRuntimeErrorType.INVALID_SUBMISSION,
                                      f"Prediction must have columns {self.id_column}, {self.answer_column} (got {', '.join(answer.columns)})")
        if answer[self.id_column].cast(pl.Utf8).to_list() != expected[self.id_column].cast(pl.Utf8).to_list():
            raise GatewayRuntimeError(GatewayRuntimeErrorType.INVALID_SUBMISSION, f"Invalid values for {self.id_column} in batch of predictions.")
        if self.integer and not answer[self.answer_column].dtype.is_integer():
            raise GatewayRuntimeError(GatewayRuntimeErrorType.INVALID_SUBMISSION,
                                      f"{self.answer_column} must be an integer, got {answer[self.answer_column].dtype}")
        return answer

    def run(self, folder: str | Path = ".") -> None:
        """Every row to `predict`, then submission.parquet in `folder`; on a rerun result.json says how it ended."""
        import polars as pl

        folder = Path(folder)

        error = None
        try:
            answers = []
            for row, expected in self.rows():
                answer = self.client.send("predict", *row.get_columns())
                answers.append(self.validate(answer, expected).select(self.id_column, self.answer_column))
            try:
                pl.concat(answers, how="vertical_relaxed").write_parquet(folder / "submission.parquet")
            except pl.exceptions.PolarsError as exc:
                raise GatewayRuntimeError(GatewayRuntimeErrorType.INVALID_SUBMISSION, f"Inconsistent predictions: {exc}") from None
        except GatewayRuntimeError as gre:
            error = gre
        except Exception:  # noqa: BLE001 (the gateway's own bug: reported as such, never as the notebook's)
            error = GatewayRuntimeError(GatewayRuntimeErrorType.GATEWAY_RAISED_EXCEPTION, traceback.format_exc())
        if self.client is not None:
            self.client.close()
        if self.rerun:
            write_result(error, folder)
        elif error is not None:
            raise error


def write_result(error: GatewayRuntimeError | None, folder: Path = Path(".")) -> None:
    """result.json, as the real gateway writes it on a rerun."""
    result: dict = {"Succeeded": error is None}
    if error is not None:
        result.update(ErrorType=error.error_type.value, ErrorName=error.error_type.name,
                      ErrorDetails=str(error.error_details)[:8000] if error.error_details else None)
    (Path(folder) / "result.json").write_text(json.dumps(result))
