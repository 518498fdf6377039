"""The pages of the preview gallery (notifier.tools.gallery): Jinja templates for the list,
the detail page and the result of "send a test", and their CSS.

Autoescaped; the live-reload script runs under a per-page nonce (gallery.PAGE_CSP).
"""

from __future__ import annotations

from jinja2 import DictLoader, Environment

SOURCES = ("order", "case", "product")

_CSS = """
*{box-sizing:border-box}body{margin:0;background:#f6f4f1;color:#222;font:15px/1.5 system-ui,sans-serif}
a{color:#9c2f4e}header{background:#b03a5b;color:#fff;padding:.7rem 1.5rem;display:flex;flex-wrap:wrap;
gap:1rem;align-items:center}header h1{font-size:1.1rem;margin:0;flex:1}header a{color:#fff}form{margin:0}
h3{font-size:.95rem}input{font:inherit;padding:.3rem .5rem;border:1px solid #ccc;border-radius:5px}
h2{margin:.6rem 0}td{width:27%}header label{font-size:.85rem}header input{width:5.5rem;
margin:0 .6rem 0 .3rem;border:0}.send input{width:18rem}main{padding:1.2rem 1.5rem;max-width:1500px;
margin:auto}table{border-collapse:collapse;width:100%;background:#fff;border-radius:8px;
box-shadow:0 1px 3px #0002}thead th{background:#faf7f4}.name{font:600 14px ui-monospace,monospace}
button{font:inherit;padding:.35rem .9rem;border:0;border-radius:5px;background:#222;color:#fff;
cursor:pointer}th,td{padding:.6rem .8rem;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
.mkt{background:#fde3cf}.tag{display:inline-block;font-size:.72rem;padding:0 .4rem;border-radius:3px;
background:#eee;margin-right:.2rem}.notes{margin:.35rem 0 0;padding:0;list-style:none;font-size:.82rem}
.warn{background:#fff4d1;color:#6b4b00}.notes li,.note{padding:.2rem .5rem;margin:.2rem 0;border-radius:4px}
.ok{color:#2a7a3a;font-size:.82rem}.err{background:#fde7e7;color:#8f1111;white-space:pre-wrap;
font:.8rem/1.45 ui-monospace,monospace}.sent{background:#e3f4e6;color:#1d5e2b}
.daemon{background:#e6eefb;font-size:.85rem}.locales a{margin-right:.7rem}
.locales .on{font-weight:700;color:#222}.cols{display:grid;
grid-template-columns:minmax(0,680px) minmax(0,1fr);gap:1.5rem}pre{white-space:pre-wrap}iframe{width:100%;
height:1100px;border:1px solid #ddd;border-radius:6px;background:#fff}dt{color:#777}dd{margin:0}
pre,dl{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.8rem 1rem;
font:12.5px/1.5 ui-monospace,monospace}dl{display:grid;grid-template-columns:max-content 1fr;
gap:.15rem .9rem;word-break:break-all}"""
_BASE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{{ css }}</style>
<title>{% block title %}{% endblock %} - Email previews</title></head><body><header><h1>
<a href="/preview{{ query }}">Email previews</a>{% block crumb %}{% endblock %}</h1>{% block form %}<form>
{% for s in sources %}<label>{{ s }}<input name="{{ s }}" inputmode="numeric"
value="{{ ref[1] if ref and ref[0] == s }}"></label>{% endfor %}<button>Use real data</button>
{% if ref %}<a href="?">back to sample data</a>{% endif %}</form>{% endblock %}</header><main>
<p class="note daemon" id="daemon">{{ daemon }}</p>
{% for problem in problems %}<p class="note err">{{ problem }}</p>{% endfor %}{% block main %}{% endblock %}
</main><script nonce="{{ nonce }}">const seen = "{{ version }}";
setInterval(() => fetch("/preview/version", {cache: "no-store"}).then(r => r.text())
  .then(v => { if (v !== seen) location.reload() }).catch(() => {}), 2000)</script></body></html>"""
_NOTES = """{% macro notes(c) %}{% if c.error or c.warnings %}<ul class="notes">
{% if c.error %}<li class="err">{{ c.error }}</li>{% endif %}
{% for warning in c.warnings %}<li class="warn">{{ warning }}</li>{% endfor %}</ul>
{% else %}<div class="ok">No warnings</div>{% endif %}{% endmacro %}"""
_GALLERY = """{% extends "base" %}{% block title %}All templates{% endblock %}{% block main %}
{% from "notes" import notes %}<p>{{ rows|length }} templates in {{ locales|length }} languages, with
{{ "%s %s"|format(*ref) if ref else "sample data" }}. This page reloads when a template is saved.</p>
<table><thead><tr><th>Template</th>{% for l in locales %}<th>{{ l }}</th>{% endfor %}</tr></thead><tbody>
{% for template, trigger, marketing, cells in rows %}<tr><th scope="row">
<div class="name">{{ template }}</div><span class="tag">{{ trigger }}</span>
{%- if marketing %}<span class="tag mkt">marketing</span>{% endif %}</th>{% for c in cells %}
<td data-template="{{ c.template }}" data-locale="{{ c.locale }}">
<a href="/preview/{{ c.template }}/{{ c.locale }}{{ query }}">
{{- c.rendered.subject if c.rendered else "(does not render)" }}</a>{{ notes(c) }}</td>
{% endfor %}</tr>{% endfor %}</tbody></table>{% endblock %}"""
_DETAIL = """{% extends "base" %}{% block title %}{{ cell.template }} {{ cell.locale }}{% endblock %}
{% block crumb %} / {{ cell.template }} / {{ cell.locale }}{% endblock %}
{% block main %}{% from "notes" import notes %}{% set here = "/preview/" ~ cell.template %}
<nav class="locales">{% for l in locales %}<a href="{{ here }}/{{ l }}{{ query }}"
{%- if l == cell.locale %} class="on"{% endif %}>{{ l }}</a>{% endfor %}</nav>
<h2>{{ cell.rendered.subject if cell.rendered else "This message does not render" }}</h2>{{ notes(cell) }}
{% if editor %}<p class="edit">Edit
<a href="/edit/file/{{ cell.template }}/{{ cell.used }}.html">the HTML part</a>,
<a href="/edit/file/{{ cell.template }}/{{ cell.used }}.subject.txt">the subject</a></p>{% endif %}
{% if cell.rendered %}<div class="cols"><section><h3>HTML part
(<a href="{{ here }}/{{ cell.locale }}/html{{ query }}" target="_blank" rel="noopener">open in a tab</a>)</h3>
<iframe sandbox title="HTML part" srcdoc="{{ cell.rendered.html }}"></iframe></section>
<section><h3>Headers</h3><dl>
{% for name, value in cell.headers %}<dt>{{ name }}</dt><dd>{{ value }}</dd>{% endfor %}</dl>
<h3>Send a test to me</h3><form method="post" class="send"
action="{{ here }}/{{ cell.locale }}/send{{ query }}">
<input type="email" name="email" required autocomplete="email" placeholder="you@example.com">
<button>Send a test</button></form><h3>Text part</h3><pre>{{ cell.rendered.text }}</pre></section></div>
{% endif %}{% endblock %}"""
_RESULT = """{% extends "base" %}{% block title %}Test email{% endblock %}{% block form %}{% endblock %}
{% block main %}<p class="note {{ 'sent' if ok else 'err' }}">{{ says }}</p>
<p><a href="{{ back }}">Back</a></p>{% endblock %}"""
_TEMPLATES = {"base": _BASE, "notes": _NOTES, "gallery": _GALLERY, "detail": _DETAIL, "result": _RESULT}
PAGES = Environment(autoescape=True, loader=DictLoader(_TEMPLATES))
PAGES.globals.update(css=_CSS, sources=SOURCES)
