"""Drives the web console in headless Chromium over the Chrome DevTools Protocol (CDP), against a real
`loam local` (started by `crates/loam/tests/e2e/console.rs`, which checks the cluster's state afterwards).

Input (environment): LOAM_CONSOLE (the Coordinator's base URL), LOAM_TOKEN (its admin token), LOAM_UFS (a
directory holding a/ with small files and big/f, slow to load at 64 KiB/s), LOAM_UFS2 (an empty directory
apart from it), LOAM_SHOTS (where the
screenshots go), CHROMIUM (the browser). Output: one JSON line with what it did (the job ids).

The phases: the console's routes and headers (urllib); then in the browser, by keyboard only (CDP key
events: Tab, Enter, typed characters): the skip link, sign-in with a wrong token (back to sign-in with the
API's message), sign-in with the right one, and on the mounts page a bad mount (the API's message, nothing
added) then a good one; then by clicking: a second mount removed (two presses: Remove, Confirm remove), a load watched to SUCCEEDED, the file index showing the loaded
files on a worker, a slow load stopped, resumed and stopped again, a quota with its usage bar, and a
screenshot of every page. Any browser console error, page exception, or failed request other than the
ones this script provokes (the 401 of the wrong token and of reads before sign-in, the 400 of the bad
mount, the 409 that resumes a stopped load) fails the run.

The WebSocket client is aiohttp's (already in the test venv, as a dependency of alluxiofs).
"""

import asyncio
import base64
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import aiohttp

BASE = os.environ["LOAM_CONSOLE"].rstrip("/")
TOKEN = os.environ["LOAM_TOKEN"]
UFS = os.environ["LOAM_UFS"]
UFS2 = os.environ["LOAM_UFS2"]
SHOTS = os.environ["LOAM_SHOTS"]
CAP = 120  # seconds any one wait may take on a loaded machine (a cap on hangs, not a performance check)


def fail(msg):
    raise AssertionError(msg)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def check_routes():
    """`/` redirects; the assets are public, typed, carry the CSP and an ETag (304 on a match); the API
    still wants a token."""
    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(BASE + "/")
        fail("GET / did not redirect")
    except urllib.error.HTTPError as e:
        assert e.code == 302 and e.headers["Location"] == "/console", (e.code, dict(e.headers))
    types = {"/console": "text/html", "/console/app.js": "text/javascript", "/console/console.css": "text/css"}
    for path, ctype in types.items():
        with urllib.request.urlopen(BASE + path) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith(ctype), (path, dict(r.headers))
            csp = r.headers["Content-Security-Policy"]
            assert csp and "default-src 'self'" in csp, (path, csp)
            etag = r.headers["ETag"]
            assert etag and r.headers["Cache-Control"] == "no-cache", (path, dict(r.headers))
        try:
            urllib.request.urlopen(urllib.request.Request(BASE + path, headers={"If-None-Match": etag}))
            fail(f"{path}: a matching If-None-Match was not answered 304")
        except urllib.error.HTTPError as e:
            assert e.code == 304, (path, e.code)
    try:
        urllib.request.urlopen(BASE + "/api/v1/mount")
        anonymous_reads = True
    except urllib.error.HTTPError as e:
        assert e.code == 401, e.code
        anonymous_reads = False
    try:
        req = urllib.request.Request(BASE + "/api/v1/mount", data=b'{"path":"/x","ufs":"file:///tmp"}', method="POST",
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req)
        fail("an anonymous mount was accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 401, e.code
    return anonymous_reads


class Browser:
    """One page of a headless Chromium, over CDP; collects console errors and failed requests."""

    def __init__(self, ws):
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending = {}
        self.errors = []  # what fails the run
        self.failed = []  # (method, url, status) of 4xx/5xx answers and failed loads
        self.methods = {}
        self.reader = asyncio.ensure_future(self.read())

    async def read(self):
        async for msg in self.ws:
            m = json.loads(msg.data)
            if "id" in m:
                fut = self.pending.pop(m["id"], None)
                if fut and not fut.done():
                    fut.set_result(m)
                continue
            p, method = m.get("params", {}), m.get("method")
            if method == "Network.requestWillBeSent":
                self.methods[p["requestId"]] = p["request"]["method"]
            elif method == "Network.responseReceived" and p["response"]["status"] >= 400:
                self.failed.append((self.methods.get(p["requestId"], "?"), p["response"]["url"], p["response"]["status"]))
            elif method == "Network.loadingFailed" and not p.get("canceled"):
                self.errors.append(f"request failed: {p.get('errorText')} ({self.methods.get(p['requestId'])})")
            elif method == "Runtime.exceptionThrown":
                self.errors.append("page exception: " + json.dumps(p["exceptionDetails"])[:500])
            elif method == "Runtime.consoleAPICalled" and p["type"] in ("error", "warning", "assert"):
                self.errors.append("console." + p["type"] + ": " + json.dumps(p["args"])[:500])
            elif method == "Log.entryAdded":
                e = p["entry"]
                if e["level"] in ("error", "warning"):
                    # A 4xx the script provoked is logged as "Failed to load resource"; judged with `failed`.
                    if not (e.get("source") == "network" and e.get("url")):
                        self.errors.append(f"console {e['level']} ({e.get('source')}): {e['text']}")

    async def send(self, method, **params):
        i = next(self.ids)
        fut = asyncio.get_event_loop().create_future()
        self.pending[i] = fut
        await self.ws.send_str(json.dumps({"id": i, "method": method, "params": params}))
        m = await asyncio.wait_for(fut, CAP)
        if "error" in m:
            fail(f"{method}: {m['error']}")
        return m["result"]

    async def js(self, expr):
        r = await self.send("Runtime.evaluate", expression=expr, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in r:
            fail(f"{expr}: {r['exceptionDetails']}")
        return r["result"].get("value")

    async def wait(self, expr, what):
        deadline = time.monotonic() + CAP
        while time.monotonic() < deadline:
            v = await self.js(expr)
            if v:
                return v
            await asyncio.sleep(0.2)
        status = await self.js("document.getElementById('status') && document.getElementById('status').textContent")
        fail(f"timed out waiting for {what} ({expr}); status line: {status!r}")

    async def key(self, key, code=None, text=None, modifiers=0, commands=None):
        code = code or key
        vk = {"Tab": 9, "Enter": 13}.get(key, 0)
        if key == "Enter":
            text = "\r"  # what a real Enter key types: it submits the form of the focused field
        down = {"type": "keyDown", "key": key, "code": code,
                "windowsVirtualKeyCode": vk, "modifiers": modifiers}
        if text is not None:
            down["text"] = text
        if commands:
            down["commands"] = commands
        await self.send("Input.dispatchKeyEvent", **down)
        await self.send("Input.dispatchKeyEvent", type="keyUp", key=key, code=code, windowsVirtualKeyCode=vk,
                        modifiers=modifiers)

    async def type(self, text):
        for ch in text:
            await self.key(ch, code="", text=ch)

    async def tab_to(self, expr, what):
        """Presses Tab until `expr` (about document.activeElement) holds; at most 40 presses."""
        for _ in range(40):
            if await self.js(expr):
                return
            await self.key("Tab")
        fail(f"Tab never reached {what}")

    async def shot(self, name):
        await asyncio.sleep(0.3)  # let the last redraw paint
        r = await self.send("Page.captureScreenshot", format="png")
        with open(os.path.join(SHOTS, name + ".png"), "wb") as f:
            f.write(base64.b64decode(r["data"]))

    async def goto(self, url):
        await self.send("Page.navigate", url=url)
        await self.wait("document.readyState === 'complete' && !!window.Loam", "the console to load")

    async def click(self, selector, what):
        await self.wait(f"!!document.querySelector({json.dumps(selector)})", what)
        await self.js(f"document.querySelector({json.dumps(selector)}).click()")


ACTIVE = "document.activeElement"
STATUS = "document.getElementById('status').textContent"


def row_of(job_id, state):
    return (f"[...document.querySelectorAll('tr')].some(r => r.textContent.includes({json.dumps(job_id)})"
            f" && r.querySelector('.state-{state}'))")


async def keyboard_phase(b):
    await b.goto(BASE + "/console#/signin")
    await b.shot("signin")
    # The skip link is the first stop; Enter moves the focus to the main region.
    await b.js("document.activeElement.blur()")
    await b.tab_to(f"{ACTIVE}.id === 'skip'", "the skip link")
    await b.key("Enter")
    await b.wait(f"{ACTIVE}.id === 'main'", "the focus on main after the skip link")
    await b.tab_to(f"{ACTIVE}.id === 'token'", "the token field")
    await b.type("not-the-token")
    await b.key("Enter")
    await b.wait("document.getElementById('signin-reason') && document.getElementById('signin-reason').textContent"
                 ".includes('invalid credentials')", "the sign-in page with the API's reason")
    assert "invalid credentials" in await b.js(STATUS), await b.js(STATUS)
    assert await b.js("sessionStorage.getItem('loam.token')") is None, "a refused token was kept"
    await b.shot("signin-refused")
    await b.wait(f"{ACTIVE}.id === 'token'", "the focus back on the token field")
    await b.type(TOKEN)
    await b.key("Enter")
    await b.wait("location.hash === '#/overview' && document.getElementById('who').textContent === 'Signed in'",
                 "the overview after sign-in")
    # By keyboard to the mounts page, then a bad mount and a good one.
    await b.tab_to(f"{ACTIVE}.getAttribute('href') === '#/mounts'", "the Mounts link")
    await b.key("Enter")
    await b.wait("location.hash === '#/mounts' && !!document.querySelector('form input[name=path]')", "the mounts page")
    await b.wait("document.querySelector('#page-mounts p.hint, #page-mounts table') !== null", "the mount table")
    await b.tab_to(f"{ACTIVE}.name === 'path'", "the mount point field")
    await b.type("/data")
    await b.key("Tab")
    await b.type("file://" + UFS + "/no-such-dir")
    await b.key("Enter")
    await b.wait(f"{STATUS}.includes('Add mount refused: ') && {STATUS}.includes('does not exist')", "the API's message")
    assert await b.js("document.querySelector('#page-mounts table') === null"), "the refused mount is listed"
    await b.shot("mounts-refused")
    assert await b.js(f"{ACTIVE}.name") == "ufs", await b.js(f"{ACTIVE}.outerHTML")
    await b.key("a", code="KeyA", modifiers=2, commands=["selectAll"])
    await b.type("file://" + UFS)
    await b.key("Enter")
    await b.wait(f"{STATUS}.startsWith('Mounted ')", "the mount to be added")
    await b.wait("document.querySelector('#page-mounts table') && document.querySelector('#page-mounts table')"
                 ".textContent.includes('/data/')", "the new mount in the table")
    await b.shot("mounts")
    # A second mount, removed: the first press of Remove only arms it, the second removes it.
    await b.js(f"""(() => {{ const f = document.querySelector('form[aria-label="Add mount"]');
        f.elements.path.value = '/scratch'; f.elements.ufs.value = {json.dumps("file://" + UFS2)}; f.requestSubmit(); }})()""")
    remove = "button[aria-label='Remove mount /scratch/']"
    await b.click(remove, "the Remove button of /scratch")
    await b.wait(f"document.querySelector(\"{remove}\").textContent === 'Confirm remove'", "Remove to ask again")
    assert await b.js("document.querySelector('#page-mounts table').textContent.includes('/scratch/')"), "removed at once"
    await b.click(remove, "Confirm remove")
    await b.wait(f"{STATUS} === 'Removed mount /scratch/.'", "the mount to be removed")
    await b.wait("!document.querySelector('#page-mounts table').textContent.includes('/scratch/')", "/scratch gone")


async def start_job(b, paths, bandwidth=""):
    await b.js(f"""(() => {{
        document.getElementById('status').textContent = '';
        const f = document.querySelector('form[aria-label="Start load"]');
        f.elements.paths.value = {json.dumps(paths)};
        f.elements.bandwidth.value = {json.dumps(bandwidth)};
        f.requestSubmit();
    }})()""")
    status = await b.wait(f"{STATUS}.startsWith('Started load job ') && {STATUS}", "the job to start")
    return status[len("Started load job "):].rstrip(".")


async def click_phase(b):
    await b.click("nav a[href='#/jobs']", "the Jobs link")
    await b.wait("!!document.querySelector('form[aria-label=\"Start load\"]')", "the jobs page")
    loaded = await start_job(b, "/data/a")
    await b.wait(row_of(loaded, "SUCCEEDED"), f"load {loaded} to reach SUCCEEDED in the page")
    await b.shot("jobs-succeeded")

    await b.click("nav a[href='#/files']", "the File index link")
    await b.js("""(() => { const f = document.querySelector('form[aria-label="Search the file index"]');
        f.elements.prefix.value = '/data/a'; f.requestSubmit(); })()""")
    await b.wait("[...document.querySelectorAll('#page-files tr')].filter(r => r.textContent.includes('/a/f0')"
                 " && r.textContent.includes('worker-')).length === 1", "a loaded file held by a worker")
    await b.shot("files")

    await b.click("nav a[href='#/jobs']", "the Jobs link")
    await b.wait("!!document.querySelector('form[aria-label=\"Start load\"]')", "the jobs page")
    slow = await start_job(b, "/data/big", "64KiB")
    stop = f"button[aria-label='Stop load job {slow}']"
    await b.click(stop, "the Stop button of the slow load")
    await b.wait(f"{STATUS} === 'Stopped load job {slow}.'", "the stop to be confirmed")
    await b.wait(row_of(slow, "STOPPED"), "the slow load shown STOPPED")
    await b.click(f"button[aria-label='Resume load job {slow}']", "the Resume button")
    await b.wait(row_of(slow, "RUNNING"), "the slow load running again")
    await b.shot("jobs")
    await b.click(stop, "the Stop button again")
    await b.wait(row_of(slow, "STOPPED"), "the slow load stopped again")

    await b.click("nav a[href='#/rules']", "the Rules link")
    await b.js("""(() => { const f = document.querySelector('form[aria-label="Set quota"]');
        f.elements.path.value = '/data'; f.elements.quota.value = '1GiB'; f.requestSubmit(); })()""")
    await b.wait("!!document.querySelector('#page-rules meter')", "the quota's usage bar")
    await b.shot("rules")

    await b.click("nav a[href='#/workers']", "the Workers link")
    await b.wait("document.querySelectorAll('#page-workers .state-ONLINE').length === 2", "two ONLINE workers")
    # Each worker's cache directory (loam local: one each) with its health and a usage bar.
    await b.wait("[...document.querySelectorAll('#page-workers li[data-dir]')].filter(d => d.querySelector("
                 "'.dir-healthy') && d.querySelector('meter')).length === 2", "two healthy cache directories")
    await b.shot("workers")
    await b.click("nav a[href='#/overview']", "the Overview link")
    await b.wait("document.querySelector('.card .value') && document.querySelector('.card .value').textContent"
                 " === '2 online'", "the overview's worker count")
    await b.wait("[...document.querySelectorAll('svg.spark polyline')].filter(l => l.getAttribute('points')"
                 ".split(' ').length >= 3).length === 2", "the throughput charts over three samples")
    # The cluster's usage from /api/v1/nodes/stats: the loaded files are cached, so the bar is above 0.
    await b.wait("document.querySelector('[data-card=usage] meter') && "
                 "document.querySelector('[data-card=usage] meter').value > 0", "the used bytes above 0")
    await b.wait("document.querySelector('[data-card=hit-ratio]').textContent.includes('page hits') && "
                 "!!document.querySelector('[data-card=hit-ratio] [data-recent]')", "the hit ratio's numbers")
    await b.shot("overview")
    return loaded, slow


async def main():
    anonymous_reads = check_routes()
    os.makedirs(SHOTS, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="loam-chromium-")
    chrome = subprocess.Popen(
        [os.environ.get("CHROMIUM", "chromium"), "--headless=new", "--no-sandbox", "--disable-gpu",
         "--remote-debugging-port=0", "--user-data-dir=" + profile, "--no-first-run", "--no-default-browser-check",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,1000", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = os.path.join(profile, "DevToolsActivePort")
        deadline = time.monotonic() + CAP
        while not (os.path.exists(port_file) and open(port_file).read().count("\n") >= 1):
            if time.monotonic() > deadline or chrome.poll() is not None:
                fail("chromium did not start its DevTools endpoint")
            await asyncio.sleep(0.1)
        port = open(port_file).read().split("\n")[0]
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as r:
                page = next(t for t in await r.json() if t["type"] == "page")
            async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                b = Browser(ws)
                for domain in ("Page", "Runtime", "Network", "Log"):
                    await b.send(domain + ".enable")
                await keyboard_phase(b)
                loaded, slow = await click_phase(b)
                # Every failure is one this script provoked.
                for method, url, status in b.failed:
                    path = url[len(BASE):]
                    before_sign_in = status == 401 and method == "GET" and not anonymous_reads
                    wrong_token = status == 401 and path == "/api/v1/nodes?limit=0"
                    bad_mount = status == 400 and method == "POST" and path == "/api/v1/mount"
                    # Resume re-submits the stopped load's paths; the API answers 409 {"id"} and resumes it.
                    resume = status == 409 and method == "POST" and path == "/api/v1/load"
                    if not (before_sign_in or wrong_token or bad_mount or resume):
                        b.errors.append(f"unexpected {status} for {method} {url}")
                if not any(s == 400 for _, _, s in b.failed):
                    b.errors.append("the bad mount's 400 was not seen")
                if b.errors:
                    fail("browser errors:\n" + "\n".join(b.errors))
                print(json.dumps({"loaded": loaded, "stopped": slow, "anonymousReads": anonymous_reads}))
                b.reader.cancel()
    finally:
        chrome.terminate()
        chrome.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except AssertionError as e:
        print("console test failed:", e, file=sys.stderr)
        sys.exit(1)
