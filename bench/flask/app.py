"""The seed's Flask program (shared/seed/session-timeout-in-flask.md), written
for sessionguard's benchmark as the seed describes it: Flask's signed cookie
session, made permanent at sign-in, with PERMANENT_SESSION_LIFETIME of 30
minutes. Flask re-sends the cookie with a new expiry on every request
(SESSION_REFRESH_EACH_REQUEST, on by default), which slides the 30 minutes
from the last activity.

The benchmark harness (bench/) serves it with gunicorn and 2 workers:
    BENCH_FLASK_SECRET=... gunicorn --workers 2 --bind 127.0.0.1:8000 app:app
"""

import os
from datetime import timedelta

from flask import Flask, redirect, request, session, url_for

app = Flask(__name__)
app.secret_key = os.environ["BENCH_FLASK_SECRET"]

# Set the session timeout to 30 minutes
app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(minutes=30)
# A secure session cookie: HTTPS only, not readable by scripts.
app.config["SESSION_COOKIE_SECURE"] = True
app.config["SESSION_COOKIE_HTTPONLY"] = True
app.config["SESSION_COOKIE_SAMESITE"] = "Lax"


@app.route("/login", methods=["GET", "POST"])
def login():
    # The benchmark measures the session, not passwords: any name signs in.
    if request.method == "POST":
        session.permanent = True
        session["username"] = request.form["username"]
        return redirect(url_for("index"))
    return '<form method="post"><input name="username"><button>Sign in</button></form>'


@app.route("/")
def index():
    # An expired or missing session sends the user to sign in again.
    if "username" not in session:
        return redirect(url_for("login"))
    return "hello " + session["username"] + "\n"


@app.route("/logout", methods=["POST"])
def logout():
    session.clear()
    return redirect(url_for("login"))
