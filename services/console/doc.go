// Package console serves the operator console: a single-page web application
// at /console/ on the base URL through which one tenant manages its
// integrations (list, start/pause, create, edit, delete), reads what happened
// to its events (attempts, rejected events, logs, charts, a live tail) and
// retries or deletes rejected events.
//
// The console is only static files embedded in the binary (HTML, CSS and
// plain JavaScript modules; no build step). Everything it shows it reads in
// the browser from the public APIs, with the token the user signed in with:
// the server never sees the token (it lives in sessionStorage and travels
// only in the Authorization header of API calls), so this package has no
// state, no configuration and no access to the catalog.
//
// Failure modes: none at run time beyond a missing file (404). A strict
// Content-Security-Policy (scripts and styles only from /console/, API calls
// only to the same origin) limits what a hostile response body shown in the
// console could do; the scripts build the page with textContent, never HTML
// strings.
package console
