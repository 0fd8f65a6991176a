"""HTML of the report: the index shell and one static page per object.

Safe by construction: every string that comes from an object key, a label, an error or any
stored response passes through :func:`esc` (or, in the index's data file, through ``json.dumps``
and is then set with ``textContent`` by the page's script); numbers are formatted here. Nothing
is ever inserted as markup.
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from rekpipe.report.model import Box, CountSeries, ImageView, IndexEntry, ManifestEntry, Track, VideoView

MAX_TRACKS_PER_GROUP = 300
"""Rows drawn per timeline group (a long video can have thousands of distinct labels); the rest are counted."""
BOX_KINDS = {
    "face": "Faces", "label": "Label instances", "text": "Text", "celebrity": "Celebrities", "person": "Persons (PPE)",
    "ppe": "Protective equipment", "face_search": "Searched face", "custom": "Custom labels",
}
GENERATOR = "rekpipe report"


def esc(value: Any) -> str:
    """Escape for HTML text and quoted attribute values."""
    return html.escape(str(value), quote=True)


def object_href(entry_id: str) -> str:
    """Where an object's page is, relative to the report's root (ids are lowercase hex or alphanumerics)."""
    return f"objects/{entry_id[:2]}/{entry_id}.html"


def _pct(value: float) -> str:
    return f"{value * 100:.3f}%"


def _confidence(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}%"


def format_ms(ms: int) -> str:
    """``1:02.5`` (or ``1:01:02.5``): readable times for a timeline."""
    seconds, millis = divmod(max(0, int(ms)), 1000)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    head = f"{hours}:{minute:02d}" if hours else f"{minute}"
    return f"{head}:{second:02d}.{millis // 100}"


def _page(title: str, body: str, *, root: str, synthetic: str | None, scripts: Iterable[str] = ()) -> str:
    """A whole page: head, the synthetic banner when it applies, the body and the scripts."""
    banner = (f'<div class="synthetic-banner" id="synthetic-banner" role="alert"><strong>Synthetic content.</strong> '
              f"{esc(synthetic)}</div>" if synthetic else "")
    script_tags = "".join(f'<script src="{esc(src)}"></script>' for src in scripts)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta name="generator" content="{GENERATOR}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title>"
        f'<link rel="stylesheet" href="{root}assets/report.css"></head>'
        f"<body>{banner}{body}{script_tags}</body></html>\n"
    )


# --- index -------------------------------------------------------------------------------------------
def index_page(*, source: str, generated_at: str, counts: dict[str, int], synthetic: str | None,
               page_size: int) -> str:
    """The index shell; its rows come from ``data/index.js`` (loaded by a script tag, which works from file://)."""
    total = sum(counts.values())
    count_cells = "".join(
        f'<div class="count status-{esc(status)}" data-status="{esc(status)}"><span class="count-n" '
        f'id="count-{esc(status)}">{count:,}</span> <span class="count-label">{esc(status)}</span></div>'
        for status, count in counts.items()
    )
    options = "".join(f'<option value="{esc(s)}">{esc(s)}</option>' for s in counts)
    body = f"""
<header><h1>Rekognition results</h1>
<p class="meta">Source <code>{esc(source)}</code> · {total:,} objects · built {esc(generated_at)}</p></header>
<section class="counts" id="counts" aria-label="Objects by status">{count_cells}</section>
<section id="browse"><h2>Objects</h2>
<form class="filters" id="filters" onsubmit="return false">
<input type="search" id="search" placeholder="Search by key or label" autocomplete="off" aria-label="Search by key or label">
<select id="status-filter" aria-label="Status"><option value="">Every status</option>{options}</select>
<select id="media-filter" aria-label="Media"><option value="">Images and videos</option>
<option value="image">Images</option><option value="video">Videos</option></select>
<span class="matches" id="matches"></span></form>
<table class="objects"><thead><tr><th>Object</th><th>Media</th><th>Status</th><th>Labels</th><th>Error</th></tr></thead>
<tbody id="objects"></tbody></table>
<nav class="pager" id="pager" data-page-size="{int(page_size)}"></nav></section>
<section id="attention"><h2>Failed and partial</h2>
<p class="meta">Objects whose analysis failed, entirely (FAILED) or for some operations (PARTIAL), with the reason.</p>
<table class="objects"><thead><tr><th>Object</th><th>Status</th><th>Reason</th></tr></thead>
<tbody id="attention-rows"></tbody></table><nav class="pager" id="attention-pager"></nav></section>
<noscript><p>The object list needs JavaScript; each object's page does not.</p></noscript>
"""
    return _page("Rekognition results", body, root="", synthetic=synthetic,
                 scripts=("data/index.js", "assets/report.js"))


def index_data(entries: list[IndexEntry], *, counts: dict[str, int], synthetic: str | None, source: str,
               generated_at: str) -> str:
    """``data/index.js``: the index as compact JSON assigned to a global (``fetch`` is blocked on file://).

    Columns per object: id, key, bucket id (into ``buckets``), media (``i``/``v``), status, label ids
    (into ``labels``), error, version. Buckets and labels are stored once and referenced, and the
    version only where one key has several, which keeps 100,000 objects to about 100 bytes each.
    """
    label_ids: dict[str, int] = {}
    bucket_ids: dict[str, int] = {}
    versions_per_key: dict[tuple[str, str], int] = {}
    for entry in entries:
        versions_per_key[(entry.bucket, entry.key)] = versions_per_key.get((entry.bucket, entry.key), 0) + 1
    rows = []
    for entry in entries:
        ids = [label_ids.setdefault(name, len(label_ids)) for name in entry.labels]
        version = entry.version if versions_per_key[(entry.bucket, entry.key)] > 1 else ""
        rows.append([entry.entry_id, entry.key, bucket_ids.setdefault(entry.bucket, len(bucket_ids)),
                     "v" if entry.media_type == "video" else "i", entry.status, ids, entry.error, version])
    document = {"version": 2, "source": source, "generated_at": generated_at, "synthetic": synthetic,
                "counts": counts, "buckets": list(bucket_ids), "labels": list(label_ids), "objects": rows}
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    # Line and paragraph separators end a line in older JavaScript parsers.
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return f"window.REKPIPE_INDEX = {text};\n"


# --- object pages ------------------------------------------------------------------------------------
def _object_header(entry: ManifestEntry, kind: str) -> str:
    source = entry.source
    version = source.version_id or (f"ETag {source.etag}" if source.etag else "unversioned")
    size = f" · {source.size:,} bytes" if source.size is not None else ""
    return (f'<nav class="crumbs"><a href="../../index.html">All objects</a></nav>'
            f'<header><h1 class="object-key" id="object-key">{esc(source.key)}</h1>'
            f'<p class="meta">{esc(kind)} · <code>s3://{esc(source.bucket)}/{esc(source.key)}</code> · version '
            f"<code>{esc(version)}</code>{size} · analysed {esc(entry.written_at or '?')}</p></header>")


def _status_section(entry: ManifestEntry, operation_status: dict[str, str] | None = None) -> str:
    """The task's status and, per output, whether it succeeded and why not."""
    rows = []
    names = list(dict.fromkeys([*entry.outputs, *entry.errors, *(operation_status or {})]))
    for name in names:
        error = entry.errors.get(name)
        state = "FAILED" if error else "SUCCEEDED"
        reason = f"{error.get('code', '')}: {error.get('message', '')}" if error else ""
        rows.append(f'<tr class="operation" data-status="{state}"><td>{esc(name)}</td>'
                    f'<td><span class="status status-{state}">{state}</span></td><td>{esc(reason)}</td></tr>')
    operations = ", ".join(entry.operations) or "-"
    return (f'<section id="status"><h2>Status <span class="status status-{esc(entry.status)}" id="task-status">'
            f"{esc(entry.status)}</span></h2><p class=\"meta\">Operations asked: {esc(operations)}</p>"
            '<table class="operations" id="operations"><thead><tr><th>Output</th><th>Status</th><th>Error</th></tr>'
            f"</thead><tbody>{''.join(rows)}</tbody></table></section>")


def _box(box: Box) -> str:
    text = f"{box.label} {_confidence(box.confidence)}".strip()
    return (f'<div class="box kind-{esc(box.kind)}" data-kind="{esc(box.kind)}" style="left:{_pct(box.left)};'
            f'top:{_pct(box.top)};width:{_pct(box.width)};height:{_pct(box.height)}" title="{esc(text)}">'
            f'<span class="box-label">{esc(text)}</span></div>')


def image_page(entry: ManifestEntry, view: ImageView, *, picture: str | None, picture_size: tuple[int, int] | None,
               picture_note: str, synthetic: str | None) -> str:
    """One image: the picture with every box, the tables of what was found, and the task's outcome.

    Parameters
    ----------
    picture: str | None
        ``src`` of the picture (a path inside the report, or a presigned URL); None draws a blank frame.
    picture_size: tuple[int, int] | None
        Width and height of the picture when known, so the boxes' frame has the right shape at once.
    picture_note: str
        Why there is no picture, or where it comes from.
    """
    boxes = "".join(_box(box) for box in view.boxes)
    if picture:
        size = f' width="{picture_size[0]}" height="{picture_size[1]}"' if picture_size else ""
        media = f'<img id="picture" src="{esc(picture)}" alt="{esc(entry.source.key)}"{size}>'
        frame_class = "frame"
    else:
        media = '<div class="blank" id="picture-missing"></div>'
        frame_class = "frame no-picture"
    kinds: dict[str, int] = {}
    for box in view.boxes:
        kinds[box.kind] = kinds.get(box.kind, 0) + 1
    legend = "".join(
        f'<label class="legend-item kind-{esc(kind)}"><input type="checkbox" checked data-toggle-kind="{esc(kind)}"> '
        f"{esc(BOX_KINDS.get(kind, kind))} ({count})</label>"
        for kind, count in kinds.items()
    )
    tables = "".join(_table(title, rows) for title, rows in view.tables.items())
    body = (f"{_object_header(entry, 'Image')}"
            f'<section id="image"><figure class="{frame_class}" id="frame" data-boxes="{len(view.boxes)}">{media}'
            f"{boxes}</figure><p class=\"meta\">{esc(picture_note)}</p>"
            f'<div class="legend" id="legend">{legend or "No boxes in the stored responses."}</div></section>'
            f"{_status_section(entry)}{tables}")
    return _page(f"{entry.source.key} · Rekognition", body, root="../../", synthetic=synthetic,
                 scripts=("../../assets/report.js",))


def _table(title: str, rows: list[Any]) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in title.lower())
    if not rows:
        return f'<section class="found" id="{slug}"><h2>{esc(title)}</h2><p class="meta">None found.</p></section>'
    body = "".join(f"<tr><td>{esc(row.name)}</td><td class=\"num\">{_confidence(row.confidence)}</td>"
                   f"<td>{esc(row.detail)}</td></tr>" for row in rows)
    return (f'<section class="found" id="{slug}"><h2>{esc(title)} ({len(rows)})</h2><table><thead><tr><th>Name</th>'
            f"<th>Confidence</th><th>Detail</th></tr></thead><tbody>{body}</tbody></table></section>")


def video_page(entry: ManifestEntry, view: VideoView, *, synthetic: str | None, notes: list[str]) -> str:
    """One video: a timeline of everything found (filterable by label), counts over time, and per-operation status."""
    duration = max(1, view.duration_ms)
    meta = view.metadata
    facts = [f"duration {format_ms(view.duration_ms)}"]
    if meta.get("FrameWidth"):
        facts.append(f"{meta.get('FrameWidth')}×{meta.get('FrameHeight')}")
    if meta.get("FrameRate"):
        facts.append(f"{float(meta['FrameRate']):.2f} fps")
    if meta.get("Codec"):
        facts.append(str(meta["Codec"]))
    groups: dict[str, list[Track]] = {}
    for track in view.tracks:
        groups.setdefault(track.group, []).append(track)
    ticks = "".join(f'<span class="tick" style="left:{i * 10}%">{esc(format_ms(duration * i // 10))}</span>'
                    for i in range(11))
    parts = []
    for group, tracks in groups.items():
        shown = tracks[:MAX_TRACKS_PER_GROUP]
        hidden = len(tracks) - len(shown)
        rows = "".join(_track(track, duration) for track in shown)
        more = f'<p class="meta">{hidden:,} more not drawn.</p>' if hidden else ""
        parts.append(f'<div class="track-group" data-group="{esc(group)}"><h3>{esc(group)} ({len(tracks):,})</h3>'
                     f"{rows}{more}</div>")
    timeline = "".join(parts) or '<p class="meta">Nothing on the timeline: no summary was readable.</p>'
    counts = "".join(_counts(series, duration) for series in view.counts)
    note_html = "".join(f'<p class="meta note">{esc(note)}</p>' for note in notes)
    body = (f"{_object_header(entry, 'Video')}<p class=\"meta\">{esc(' · '.join(facts))}</p>"
            f"{_status_section(entry, view.operations)}"
            f'<section id="timeline-section"><h2>Timeline</h2>'
            f'<input type="search" id="label-filter" placeholder="Filter by label" autocomplete="off" '
            f'aria-label="Filter by label"> <span class="matches" id="filter-matches"></span>'
            f'<div class="timeline" id="timeline"><div class="axis">{ticks}</div>{timeline}</div>{note_html}</section>'
            f'<section id="counts-section"><h2>Faces and people</h2>{counts or "<p class=meta>No counts.</p>"}'
            "</section>")
    return _page(f"{entry.source.key} · Rekognition", body, root="../../", synthetic=synthetic,
                 scripts=("../../assets/report.js",))


def _track(track: Track, duration: int) -> str:
    bars = []
    for start, end in track.ranges:
        left = min(1.0, start / duration)
        width = max(0.002, min(1.0 - left, (end - start) / duration))
        bars.append(f'<div class="bar" style="left:{_pct(left)};width:{_pct(width)}" '
                    f'title="{esc(format_ms(start))}–{esc(format_ms(end))}"></div>')
    label = f"{track.name} {_confidence(track.confidence)}".strip()
    return (f'<div class="track" data-name="{esc(track.name)}" data-ranges="{len(track.ranges)}">'
            f'<div class="track-name" title="{esc(label)}">{esc(label)}</div>'
            f'<div class="track-bars">{"".join(bars)}</div></div>')


def _counts(series: CountSeries, duration: int) -> str:
    if not series.counts:
        return (f'<div class="count-series" data-series="{esc(series.name)}"><div class="track-name">'
                f"{esc(series.name)}</div><div>{series.total if series.total is not None else '?'} distinct</div></div>")
    peak = max(series.counts) or 1
    bins = "".join(
        f'<div class="bin" style="height:{100 * count / peak:.1f}%" title="{esc(format_ms(i * series.bin_ms))}: '
        f'{count}"></div>' for i, count in enumerate(series.counts))
    return (f'<div class="count-series" data-series="{esc(series.name)}"><div class="track-name">{esc(series.name)} '
            f"(peak {peak})</div><div class=\"histogram\">{bins}</div></div>")


def failure_page(entry: ManifestEntry, *, reason: str, synthetic: str | None) -> str:
    """A page for an object whose outputs could not be read at all: the outcome and why."""
    body = (f"{_object_header(entry, entry.media_type.capitalize())}{_status_section(entry)}"
            f'<p class="meta note">{esc(reason)}</p>')
    return _page(f"{entry.source.key} · Rekognition", body, root="../../", synthetic=synthetic,
                 scripts=("../../assets/report.js",))


__all__ = ["esc", "failure_page", "format_ms", "image_page", "index_data", "index_page", "object_href",
           "video_page"]
