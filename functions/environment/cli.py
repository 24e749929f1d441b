"""Print a station's forecast and how good it is, from a running cloud:

    python -m functions.environment.cli forecast lsn-tam-thanh-air [--base-url http://127.0.0.1:8080] [--days 14]

The errors are measured on the last quarter of the station's history, held back while the model was
fitted, beside the two naive forecasts it blends (persistence, the diurnal profile).
"""

from __future__ import annotations

import argparse
import sys

import httpx


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m functions.environment.cli")
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("forecast", help="a station's AQI forecast and its error on held-back hours")
    f.add_argument("station")
    f.add_argument("--base-url", default="http://127.0.0.1:8080")
    f.add_argument("--days", type=int, default=14)
    f.add_argument("--hours", type=int, default=24)
    args = p.parse_args(argv)
    r = httpx.get(f"{args.base_url.rstrip('/')}/environment/v1/stations/{args.station}/forecast",
                  params={"days": args.days, "hours": args.hours}, timeout=120, trust_env=False)
    if r.status_code != 200:
        print(f"{r.status_code}: {r.text[:300]}", file=sys.stderr)
        return 1
    body = r.json()
    ev = body["evaluation"]
    print(f"station {body['station']} — {body['model']}\n")
    if not ev.get("enough_history"):
        print(f"not enough history: {ev['hours']} hours of AQI, {ev['needed']} needed")
        return 0
    print(f"history {ev['hours']} h; held back from {ev['held_back_from']}")
    print(f"{'horizon':>8}  {'cases':>6}  {'MAE model':>9}  {'persistence':>11}  {'diurnal':>8}  {'weight on now':>13}")
    for h, e in ev["horizons"].items():
        print(f"{h + ' h':>8}  {e['cases']:6d}  {e['mae_model']:9.1f}  {e['mae_persistence']:11.1f}  {e['mae_diurnal']:8.1f}  "
              f"{e['weight_on_now']:13.2f}")
    print("\nnext hours:", ", ".join(f"{x['hour'][11:16]} {x['aqi']}" for x in body["forecast"][:args.hours]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
