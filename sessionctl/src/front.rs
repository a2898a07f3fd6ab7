//! The static front end of `demo --cross-site`: a page on one site that
//! calls the demo API on another with `fetch(..., { credentials: 'include' })`.

use axum::response::Html;
use axum::routing::get;
use axum::Router;

/// A router serving the front-end page, which talks to `api_origin`.
pub fn front_end(api_origin: &str) -> Router {
    // JSON-encode the origin so that it lands in the script as a string.
    let origin = serde_json::Value::String(api_origin.to_owned()).to_string();
    let page = PAGE.replace("API_ORIGIN", &origin);

    Router::new().route("/", get(move || async move { Html(page) }))
}

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Front end on another site</title></head>
<body data-ready="0">
<h1>Front end on another site</h1>
<form id="login"><label>User <input id="user" required maxlength="64"></label>
<button>Log in</button></form>
<p><button id="logout">Log out</button> <button id="refresh">Refresh</button></p>
<pre id="me">loading…</pre>
<script>
const api = API_ORIGIN;

// Every call carries credentials, so the API's session cookie goes along.
async function call(path, options) {
  const response = await fetch(api + path, { credentials: 'include', ...options });
  return response.json();
}

async function showMe() {
  const me = await call('/me');
  document.getElementById('me').textContent = JSON.stringify(me);
  document.body.dataset.user = me.user === null ? '' : me.user;
  document.body.dataset.ready = '1';
}

document.getElementById('login').addEventListener('submit', async (event) => {
  event.preventDefault();
  document.body.dataset.ready = '0';
  const user = document.getElementById('user').value;
  await call('/login', { method: 'POST', body: new URLSearchParams({ user }) });
  await showMe();
});

document.getElementById('logout').addEventListener('click', async () => {
  document.body.dataset.ready = '0';
  await call('/logout', { method: 'POST' });
  await showMe();
});

document.getElementById('refresh').addEventListener('click', showMe);

showMe().catch((error) => {
  document.getElementById('me').textContent = 'error: ' + error;
  document.body.dataset.ready = 'error';
});
</script>
</body></html>
"#;
