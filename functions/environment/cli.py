"""Print a station's forecast and how good it is, from a running cloud:

    python -m functions.environment.cli forecast lsn-tam-thanh-air [--base-url http://127.0.0.1:8080] [--days 14]
    python -m functions.environment.cli forecast lsn-tam-thanh-air --simulated [--days 28]

``--simulated`` runs the same evaluation offline on the device simulator's own series for that station
(peers/environment-sim), hourly VN_AQI computed from its readings — a check of the method, not of
Lạng Sơn's air.

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
    f.add_argument("--simulated", action="store_true", help="evaluate on the simulator's series, offline")
    args = p.parse_args(argv)
    if args.simulated:
        return simulated(args.station, args.days)
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


def simulated(station_id: str, days: int) -> int:
    from datetime import datetime, timedelta, timezone
    from importlib import import_module
    from pathlib import Path

    from lscloud.loading import load_function

    from .function import aqi, forecast

    sim = import_module(load_function(Path(__file__).resolve().parents[2] / "peers" / "environment-sim").__name__ + ".stations")
    station = next((s for s in sim.STATIONS if s["id"] == station_id), None)
    if station is None or station["kind"] != "air":
        print(f"the simulator's air stations: {', '.join(s['id'] for s in sim.STATIONS if s['kind'] == 'air')}", file=sys.stderr)
        return 2
    end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    hours = [end - timedelta(hours=h) for h in range(days * 24 + 11, -1, -1)]
    means = {}
    for t in hours:      # each hour's mean of its minutes (every 5th minute: the same mean within noise)
        rs = [sim.reading(station, t - timedelta(minutes=m)) for m in range(0, 60, 5)]
        means[t] = {p: sum(r[p] for r in rs) / len(rs) for p in rs[0]}
    series = {}
    for i, t in enumerate(hours[11:], start=11):
        hist = {p: [means[hours[i - k]][p] for k in range(12 if p in aqi.PARTICLES else 1)] for p in means[t]}
        r = aqi.hourly(hist)
        if r.aqi is not None:
            series[t] = float(r.aqi)
    ev = forecast.evaluate(series)
    print(f"simulated {station_id}: {len(series)} hourly VN_AQI values over {days} days (offline)")
    print(f"{'horizon':>8}  {'cases':>6}  {'MAE model':>9}  {'persistence':>11}  {'diurnal':>8}")
    for h, e in ev["horizons"].items():
        print(f"{h + ' h':>8}  {e['cases']:6d}  {e['mae_model']:9.1f}  {e['mae_persistence']:11.1f}  {e['mae_diurnal']:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
