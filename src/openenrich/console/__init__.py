"""The web console at /console: pages served by this server, over the public API.

Each page is a template rendered once (it holds no data); `static/console.js` fills it in
the browser by calling the public HTTP API with the key the user signed in with, kept in
the tab's `sessionStorage` only. So whatever the console does, an API client can do.
"""
