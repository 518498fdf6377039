"""The pages of the template editor (notifier.tools.editor): sign in, the files, one file with its
live preview and kept versions, a diff. Autoescaped; the one script runs under a per-page nonce.
"""

from __future__ import annotations

from jinja2 import DictLoader, Environment

from notifier.tools.gallery_pages import SOURCES

_CSS = """
*{box-sizing:border-box}body{margin:0;background:#f6f4f1;color:#222;font:15px/1.5 system-ui,sans-serif}
a{color:#9c2f4e}header{background:#3b3a5b;color:#fff;padding:.7rem 1.5rem;display:flex;gap:1rem;
align-items:center}header h1{font-size:1.1rem;margin:0;flex:1}header a{color:#fff}form{margin:0}
main{padding:1.2rem 1.5rem;max-width:1600px;margin:auto}button{font:inherit;padding:.35rem .9rem;border:0;
border-radius:5px;background:#222;color:#fff;cursor:pointer}input{font:inherit;padding:.3rem .5rem;
border:1px solid #ccc;border-radius:5px}textarea{width:100%;height:32rem;
font:13px/1.45 ui-monospace,monospace;padding:.6rem;border:1px solid #ccc;border-radius:6px}
.cols{display:grid;grid-template-columns:minmax(0,1fr)
minmax(0,1fr);gap:1.5rem}.note{padding:.4rem .7rem;border-radius:5px;margin:.5rem 0}.ok{background:#e3f4e6;
color:#1d5e2b}.err,.refused{background:#fde7e7;color:#8f1111;white-space:pre-wrap;
font:.85rem/1.45 ui-monospace,monospace}.warn{background:#fff4d1;color:#6b4b00}.daemon{background:#e6eefb}
table{border-collapse:collapse;width:100%;background:#fff}th,td{padding:.4rem .6rem;
border-bottom:1px solid #eee;text-align:left;vertical-align:top}
iframe{width:100%;height:520px;border:1px solid #ddd;background:#fff}
pre{white-space:pre-wrap;background:#fff;border:1px solid #ddd;padding:.6rem;
font:12.5px/1.45 ui-monospace,monospace}.locale{margin-bottom:1.2rem}.subject{font-weight:600}
.diff .add{background:#e3f4e6}.diff .del{background:#fde7e7}
.diff .hunk{color:#777}.diff span{display:block}.inline{display:inline}.uses{font-weight:700}"""

_BASE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{{ css }}</style>
<title>{% block title %}{% endblock %} - Template editor</title></head><body><header><h1>
<a href="/edit">Template editor</a>{% block crumb %}{% endblock %}</h1><a href="/preview">Previews</a>
{% if user %}<span>{{ user }}</span>
<form method="post" action="/edit/logout"><input type="hidden" name="csrf" value="{{ csrf }}">
<button>Sign out</button></form>{% endif %}</header><main>{% block main %}{% endblock %}</main>
{% block script %}{% endblock %}</body></html>"""

_LOGIN = """{% extends "base" %}{% block title %}Sign in{% endblock %}{% block main %}
{% if says %}<p class="note err" id="says">{{ says }}</p>{% endif %}
<form method="post" action="/edit/login"><input type="hidden" name="csrf" value="{{ csrf }}">
<p><label>Name <input name="name" autocomplete="username" required></label></p>
<p><label>Password <input name="password" type="password" autocomplete="current-password" required>
</label></p>
<button id="sign-in">Sign in</button></form>{% endblock %}"""

_INDEX = """{% extends "base" %}{% block title %}Files{% endblock %}{% block main %}
<p class="note daemon">{{ daemon }}</p><table><thead><tr><th>File</th><th>Kept versions</th></tr></thead>
<tbody>{% for path in files %}<tr><td><a href="/edit/file/{{ path }}">{{ path }}</a></td>
<td>{{ counts.get(path, 0) }}</td></tr>{% endfor %}</tbody></table>{% endblock %}"""

_FILE = """{% extends "base" %}{% block title %}{{ path }}{% endblock %}
{% block crumb %} / {{ path }}{% endblock %}{% block main %}
{% if saved %}<p class="note ok" id="saved">Saved as version {{ saved }}. The daemon picks it up at its next
reload; the gallery reloads by itself.</p>{% endif %}
{% if problems %}<div class="note refused" id="refused">Not saved: notifier check does not accept this edit.
{% for problem in problems %}
{{ problem }}{% endfor %}</div>{% endif %}
<p class="note daemon" id="daemon">{{ state.daemon_uses() }}</p>
<div class="cols"><section><form method="post" id="edit" action="/edit/save/{{ path }}">
<input type="hidden" name="csrf" value="{{ csrf }}"><input type="hidden" name="base" value="{{ base }}">
<textarea name="content" spellcheck="false" aria-label="{{ path }}">{{ content }}</textarea>
<p>Preview{% if shared %} as <input name="template" value="{{ template }}" size="18">{% endif %} with
{% for s in sources %}<label>{{ s }} <input name="{{ s }}" inputmode="numeric" size="6"
value="{{ ref[1] if ref and ref[0] == s }}"></label> {% endfor %}(empty: sample data)</p>
<p><input name="note" placeholder="what changed (optional)" size="40">
<button id="save">Save</button></p></form>
<h2>Kept versions</h2><table id="versions"><thead><tr><th>#</th><th>Who</th><th>When (UTC)</th><th>Note</th>
<th></th></tr></thead><tbody>{% for v in state.versions|reverse %}<tr data-version="{{ v.number }}"
{%- if state.uses(v) %} class="uses"{% endif %}><td>{{ v.number }}
{%- if state.uses(v) %} (daemon){% endif %}</td>
<td>{{ v.author }}</td><td>{{ v.created_at.strftime("%Y-%m-%d %H:%M:%S") }}</td><td>{{ v.note }}</td>
<td><a href="/edit/diff/{{ path }}?from={{ v.id }}">diff with now</a>
<form method="post" class="inline" action="/edit/revert/{{ path }}"><input type="hidden" name="csrf"
value="{{ csrf }}"><input type="hidden" name="to" value="{{ v.id }}"><button>Revert to this</button></form>
</td></tr>{% endfor %}</tbody></table>
{% if state.default is not none %}<p>
<a href="/edit/diff/{{ path }}?from=default">diff with the shipped default</a>
<form method="post" class="inline" action="/edit/revert/{{ path }}"><input type="hidden" name="csrf"
value="{{ csrf }}"><input type="hidden" name="to" value="default"><button id="revert-default">Revert to the
shipped default</button></form></p>{% endif %}</section>
<section><h2>Preview</h2><div id="preview">{{ preview }}</div></section></div>{% endblock %}
{% block script %}<script nonce="{{ nonce }}">
const form = document.getElementById("edit"), out = document.getElementById("preview");
let timer = null, asked = 0;
function refresh() {
  const mine = ++asked;
  fetch("/edit/preview/{{ path }}", {method: "POST", body: new URLSearchParams(new FormData(form))})
    .then(r => r.text())
    .then(html => { if (mine === asked) { out.innerHTML = html; out.dataset.shown = mine } })
    .catch(() => {});
}
form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(refresh, 300) });
</script>{% endblock %}"""

_PREVIEW = """{% if problem %}<p class="note warn">{{ problem }}</p>{% endif %}
{% for c in cells %}<div class="locale" data-locale="{{ c.locale }}"><h3>{{ c.locale }}
{%- if c.used != c.locale %} (falls back to {{ c.used }}){% endif %}</h3>
{% if c.error %}<p class="note err">{{ c.error }}</p>{% else %}<p class="subject">{{ c.rendered.subject }}</p>
{% for warning in c.warnings %}<p class="note warn">{{ warning }}</p>{% endfor %}
<iframe sandbox title="{{ c.locale }} HTML part" srcdoc="{{ c.rendered.html }}"></iframe>
<pre>{{ c.rendered.text }}</pre>{% endif %}</div>{% endfor %}"""

_DIFF = """{% extends "base" %}{% block title %}{{ path }} diff{% endblock %}
{% block crumb %} / <a href="/edit/file/{{ path }}">{{ path }}</a> / diff{% endblock %}{% block main %}
<p>From {{ before }} to {{ after }}.</p>{% if lines %}<pre class="diff">{% for kind, line in lines -%}
<span class="{{ kind }}">{{ line }}</span>{%- endfor %}</pre>{% else %}<p class="note ok">No difference.</p>
{% endif %}{% endblock %}"""

_RESULT = """{% extends "base" %}{% block title %}Editor{% endblock %}{% block main %}
<p class="note err">{{ says }}</p><p><a href="{{ back }}">Back</a></p>{% endblock %}"""

PAGES = Environment(
    autoescape=True,
    loader=DictLoader(
        {"base": _BASE, "login": _LOGIN, "index": _INDEX, "file": _FILE, "preview": _PREVIEW,
         "diff": _DIFF, "result": _RESULT}
    ),
)
PAGES.globals.update(css=_CSS, sources=SOURCES)
