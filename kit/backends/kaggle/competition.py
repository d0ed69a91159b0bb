"""The competition's public board and data files on Kaggle: GetLeaderboard, ListDataFiles, DownloadDataFile.

Typed kagglesdk calls through KaggleSession (retries, timeouts, kit's errors), as the rest of the Kaggle backend.
The client's own helpers are not used here: competition_leaderboard_view prints the page token to stdout and
reads one page, and competition_download_file draws its own bar and writes under the final URL's name.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any, Callable

from kit.backends.base import BoardEntry, DataFile
from kit.backends.kaggle.session import KaggleSession
from kit.errors import BackendError

SERVICE = "competitions.competition_api_client"
# A board of a popular competition has thousands of teams; 20 pages of 200 find a position in the top 4,000
# in 20 calls. Past that kit says the position is not on the pages it read.
BOARD_PAGE_SIZE = 200
BOARD_MAX_PAGES = 20


def _score(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _date(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value or "")


def board(session: KaggleSession, slug: str, team: str) -> list[BoardEntry]:
    """The public board of competition `slug`, best first. Your team is the entry named `team` (compared without
    case; the backend passes kit.toml's [kaggle] team, else your username): Kaggle's board does not say which team
    is the caller's."""
    from kagglesdk.competitions.types.competition_api_service import ApiGetLeaderboardRequest

    mine = team.strip().lower()
    entries: list[BoardEntry] = []
    token, seen = "", set()
    for _ in range(BOARD_MAX_PAGES):
        request = ApiGetLeaderboardRequest()
        request.competition_name = slug
        request.page_size = BOARD_PAGE_SIZE
        request.page_token = token
        page = session.send(f"public board of {slug}", request, SERVICE, "get_leaderboard", competition=slug)
        for sub in page.submissions or []:
            name = sub.team_name or ""
            entries.append(BoardEntry(rank=len(entries) + 1, team=name, score=_score(sub.score),
                                      date=_date(sub.submission_date), you=bool(mine) and name.strip().lower() == mine))
        token = page.next_page_token or ""
        if not token or token in seen:
            break
        seen.add(token)
    return entries


def data_files(session: KaggleSession, slug: str) -> list[DataFile]:
    """Every data file of competition `slug` (ListDataFiles, all pages)."""
    from kagglesdk.competitions.types.competition_api_service import ApiListDataFilesRequest

    files: list[DataFile] = []
    token, seen = "", set()
    while True:
        request = ApiListDataFilesRequest()
        request.competition_name = slug
        request.page_size = 200
        request.page_token = token
        page = session.send(f"data files of {slug}", request, SERVICE, "list_data_files", competition=slug)
        files += [DataFile(f.name, int(f.total_bytes or 0), _date(f.creation_date)) for f in page.files or [] if f.name]
        token = page.next_page_token or ""
        if not token or token in seen:
            return files
        seen.add(token)


def download_data(session: KaggleSession, slug: str, name: str, dest: Path, on_bytes: Callable[[int], None] = lambda n: None) -> Path:
    """Download one data file into `dest` through `<name>.part`; a file Kaggle serves zipped (a large one: the
    final URL ends in `<name>.zip`) is unzipped. A retry after a broken connection starts the file again."""
    import requests
    from kagglesdk.competitions.types.competition_api_service import ApiDownloadDataFileRequest

    target = (dest / name).resolve()
    if dest.resolve() not in target.parents:
        raise BackendError(f"Kaggle listed a data file outside the folder: {name!r}", hint="download it from the competition's data page")
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    written = {"n": 0}

    def fetch() -> bool:
        if written["n"]:
            on_bytes(-written["n"])  # a retry: the bar starts this file again
            written["n"] = 0
        request = ApiDownloadDataFileRequest()
        request.competition_name = slug
        request.file_name = name
        with session.client() as client:
            response = client.competitions.competition_api_client.download_data_file(request)
            zipped = response.url.split("?")[0].endswith(f"{Path(name).name}.zip") and not name.endswith(".zip")
            with open(part, "wb") as out:
                try:
                    for chunk in response.iter_content(1 << 20):
                        out.write(chunk)
                        written["n"] += len(chunk)
                        on_bytes(len(chunk))
                except requests.exceptions.ChunkedEncodingError as exc:
                    raise requests.ConnectionError(f"{name}: {exc}") from None
            expected = response.headers.get("Content-Length")
            if expected and expected.isdigit() and written["n"] != int(expected):
                raise requests.ConnectionError(f"{name}: got {written['n']} of {expected} bytes")
        return zipped

    zipped = session.call(f"download {name} of {slug}", fetch, competition=slug)
    if zipped:
        with zipfile.ZipFile(part) as archive:
            inner = next((i for i in archive.namelist() if Path(i).name == Path(name).name), None)
            if inner is None:
                raise BackendError(f"Kaggle's zip of {name} does not hold it", hint="download it from the competition's data page")
            with archive.open(inner) as src, open(target.with_name(target.name + ".unzip"), "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
        part.unlink()
        os.replace(target.with_name(target.name + ".unzip"), target)
    else:
        os.replace(part, target)
    return target
