"""A third, fresh held-out set of search queries for the document search quality benchmark.

Written on 2026-12-04 by a helper session that had NOT seen the search code (pipelines/documents/search.py,
index.py, embed.py) nor any synonym or abbreviation table of the repository; it knew only the component names,
sides, symptoms and fluids of pipelines.synthetic.documents and the two earlier query sets of
benchmarks/documents.py (to avoid their wording).

Voice: a line mechanic typing a defect into the maintenance tracking system, or a pilot reading it to
maintenance control on the radio: tech-log abbreviations (vlv, actr, assy, wshld, u/s, T/R, PRSOV), the side
before the part as it is stencilled or called out (LT/RT, ENG 1/ENG 2, left seat/right seat, A/B system), and
plain-language descriptions of what was seen rather than the textbook symptom name.

NEVER use this set for tuning (weights, vocabulary, synonyms, thresholds): it is scored once, and its figure
is only honest as long as nothing was changed after looking at it.
"""

from __future__ import annotations

# One name per component of pipelines.synthetic.documents.COMPONENTS, keyed by its document name.
V3_PARTS = {
    "air conditioning pack valve": "air cond pack vlv",
    "cabin pressure controller": "cab press ctlr",
    "generator control unit": "gen ctrl unit",
    "main battery": "main bat",
    "lavatory smoke detector": "lav smoke det",
    "cargo fire detection loop": "cargo compt fire loop",
    "aileron trim tab": "ail trim tab",
    "elevator hinge bracket": "elev hinge brkt",
    "rudder power control unit": "rudder pwr ctrl unit",
    "flap track fairing": "flap trk fairing",
    "fuel quantity indicator": "fuel qty indicator",
    "fuel boost pump": "fuel bst pump",
    "engine driven hydraulic pump": "hyd EDP",
    "hydraulic reservoir": "hyd rsvr",
    "pitot probe heater": "pitot htr",
    "wing anti-ice valve": "wing A/I vlv",
    "main landing gear actuator": "main gear retract actr",
    "nose wheel steering actuator": "NWS actuator",
    "brake assembly": "brake assy",
    "main wheel tire": "main gear tire",
    "landing light": "landing lite",
    "wingtip navigation light": "wingtip pos light",
    "weather radar antenna": "WXR antenna",
    "standby altimeter": "stby altimeter",
    "crew oxygen mask": "crew oxy mask",
    "engine bleed air valve": "bleed PRSOV",
    "APU starter motor": "APU starter mtr",
    "cargo door hinge": "cargo dr hinge",
    "passenger entry door seal": "pax entry dr seal",
    "cockpit windshield": "wshld",
    "engine cowl latch": "cowl latch",
    "engine fan blade": "fan blade",
    "thrust reverser sleeve": "T/R sleeve",
    "engine oil filter": "oil fltr",
}
# Written before the part, as a mechanic would: "LT brake assy", "ENG 2 T/R sleeve", "A hyd rsvr".
V3_SIDES = {
    "": "",
    "left": "LT",
    "right": "RT",
    "number 1": "ENG 1",
    "number 2": "ENG 2",
    "forward": "forward",
    "aft": "aft",
    "captain side": "left seat",
    "first officer side": "right seat",
    "system A": "A",
    "system B": "B",
}
V3_FLUIDS = {None: "air", "hydraulic fluid": "hyd", "fuel": "Jet A", "engine oil": "oil"}
V3_SYMPTOMS = {
    "leak": "{x} leaking {fluid}",
    "crack": "{x} cracked, line visible on walkaround",
    "corrosion": "{x} corroded w/ white powdery deposits",
    "chafing": "wiring on {x} worn through by clamp, copper showing",
    "inoperative": "{x} u/s, failed ops check",
    "intermittent": "{x} drops out now and then, comes back on its own",
    "wear": "{x} worn down to min, due for change",
    "loose": "{x} wobbles by hand, hardware not torqued",
    "noise": "loud whine heard from {x} during ops",
    "vibration": "high vibes from {x}, felt through the floor",
    "damage": "{x} nicked and bent, looks like it got hit",
    "overheat": "{x} temp way up, hot to the touch",
    "low_pressure": "{x} press dropping below normal range",
    "low_voltage": "{x} volts down to 20, won't crank",
    "delamination": "{x} delam, cloudy band along the edge",
    "contamination": "{x} loaded with metal flakes",
}


def v3_query(finding) -> str:
    """A query for a finding in the third held-out words above (the side before the part)."""
    from pipelines.synthetic.documents import COMPONENTS

    fluid = next(c[4] for c in COMPONENTS if c[1] == finding.component)
    part = f"{V3_SIDES[finding.side]} {V3_PARTS[finding.component]}".strip()
    return V3_SYMPTOMS[finding.symptom].format(x=part, fluid=V3_FLUIDS[fluid])
