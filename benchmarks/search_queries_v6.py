"""A sixth, fresh held-out set of search queries for the document search quality benchmark.

Written on 2026-12-05 by a helper session that was kept BLIND to the search implementation: it did not open
pipelines/documents/ (search, index, embedding, synonym or abbreviation tables), tests/documents/, the README,
nor anything of the work trees or scratch space, and it never ran the benchmark, any search or any embedding
model. It knew only the component names, sides, symptoms and fluids of pipelines.synthetic.documents, and read
the earlier query sets (paraphrase and held_out in benchmarks/documents.py, benchmarks/search_queries_v3.py,
benchmarks/search_queries_v4.py and the fifth set, search_queries_v5.py) only to avoid their wording and to copy
the structure of v4/v5.

Voice: five other people who reach for the search box, each in their own words. Five forms, chosen per finding
by a stable hash of its key (hashlib sha256, not Python's salted hash()):

- "mcc": an outstation's chat message to maintenance control, in the shorthand people really type at a gate
  (lh/rh, no1/no2 eng, P1/P2 side, pls advise, eng'g);
- "cabin": what a flight attendant reports: what the cabin crew see or hear themselves (lav, boarding doors),
  what a passenger pointed out through a window (wing and reverser parts), and for everything else what the
  flight deck asked the cabin crew to pass on;
- "reliability": a reliability engineer looking for a defect trend, with formal part names or industry
  abbreviations (MTBUR, PIREP, NFF, positions);
- "nonnative": a technician writing simple, slightly non-native English, still precise about part, side and
  symptom;
- "apprentice": a new apprentice who does not know the part's name and describes it by shape, job or place,
  clearly enough for an expert to know which one.

NEVER tune on this set (weights, vocabulary, synonyms, thresholds): it is scored once, and its figure is only
honest as long as nothing was changed after looking at it.
"""

from __future__ import annotations

import hashlib

FORMS = ("mcc", "cabin", "reliability", "nonnative", "apprentice")

# How cabin crew come to know of a component: "seen" (in the cabin themselves), "window" (a passenger looking
# out of a window), anything else "relayed" (the flight deck asked them to pass it on).
CABIN_CLASS: dict[str, str] = {
    "lavatory smoke detector": "seen",
    "passenger entry door seal": "seen",
    "aileron trim tab": "window",
    "flap track fairing": "window",
    "wingtip navigation light": "window",
    "landing light": "window",
    "thrust reverser sleeve": "window",
}

# Per form, one name per component of pipelines.synthetic.documents.COMPONENTS (keyed by its document name);
# "{s}" is where the side goes (components without a side have none). "cabin" holds the relayed names,
# "cabin_seen" the names of the parts cabin crew or passengers see for themselves.
V6_PARTS: dict[str, dict[str, str]] = {
    "mcc": {
        "air conditioning pack valve": "{s} pack flow ctl vlv",
        "cabin pressure controller": "auto pressn ctlr",
        "generator control unit": "{s} eng gen ctl unit",
        "main battery": "main DC batt",
        "lavatory smoke detector": "smoke det in {s} lav",
        "cargo fire detection loop": "{s} cargo bay fire det loop",
        "aileron trim tab": "{s} ailn trim tab",
        "elevator hinge bracket": "{s} elevator hinge brkt",
        "rudder power control unit": "rudder PCU",
        "flap track fairing": "{s} wing flap trk canoe",
        "fuel quantity indicator": "{s} tank FQI",
        "fuel boost pump": "{s} main tank boost pump",
        "engine driven hydraulic pump": "{s} eng EDP",
        "hydraulic reservoir": "hyd {s} reservoir",
        "pitot probe heater": "{s} pitot probe htr",
        "wing anti-ice valve": "{s} wing anti-ice vlv",
        "main landing gear actuator": "{s} MLG retract cyl",
        "nose wheel steering actuator": "NWS actr",
        "brake assembly": "{s} brake pack",
        "main wheel tire": "{s} main gear wheel tyre",
        "landing light": "{s} landing lt",
        "wingtip navigation light": "{s} wingtip posn lt",
        "weather radar antenna": "WXR dish",
        "standby altimeter": "stdby altimeter",
        "crew oxygen mask": "{s} side crew O2 mask",
        "engine bleed air valve": "{s} eng HP bleed vlv",
        "APU starter motor": "APU starter motor",
        "cargo door hinge": "{s} cargo door hinge",
        "passenger entry door seal": "{s} main entry door seal",
        "cockpit windshield": "{s} cockpit windscreen",
        "engine cowl latch": "{s} eng fan cowl latch",
        "engine fan blade": "{s} eng fan blade",
        "thrust reverser sleeve": "{s} eng reverser sleeve",
        "engine oil filter": "{s} eng oil filter",
    },
    "cabin": {
        "air conditioning pack valve": "the valve on the {s} air-con pack",
        "cabin pressure controller": "the cabin pressurisation control unit",
        "generator control unit": "the electrical generator control unit on the {s} engine",
        "main battery": "the plane's main battery",
        "lavatory smoke detector": "the smoke detector in the {s} lav",
        "cargo fire detection loop": "the fire detection loop in the {s} cargo hold",
        "aileron trim tab": "the small tab on the back of the {s} aileron",
        "elevator hinge bracket": "a hinge bracket on the {s} elevator",
        "rudder power control unit": "the rudder's hydraulic power control unit",
        "flap track fairing": "a flap track fairing under the {s} wing",
        "fuel quantity indicator": "the {s} fuel quantity display",
        "fuel boost pump": "the fuel boost pump on the {s} side",
        "engine driven hydraulic pump": "the hydraulic pump on the {s} engine",
        "hydraulic reservoir": "the hydraulic system {s} reservoir",
        "pitot probe heater": "the heater on the {s} pitot tube",
        "wing anti-ice valve": "the anti-ice valve for the {s} wing",
        "main landing gear actuator": "the actuator on the {s} main landing gear",
        "nose wheel steering actuator": "the steering actuator on the nose gear",
        "brake assembly": "the brakes on the {s} main gear",
        "main wheel tire": "a tire on the {s} main gear",
        "landing light": "the {s} landing light",
        "wingtip navigation light": "the steady nav light on the {s} wingtip",
        "weather radar antenna": "the weather radar antenna in the nose",
        "standby altimeter": "the pilots' standby altimeter",
        "crew oxygen mask": "the {s} oxygen mask in the flight deck",
        "engine bleed air valve": "the bleed air valve on the {s} engine",
        "APU starter motor": "the starter for the APU",
        "cargo door hinge": "a hinge on the {s} cargo door",
        "passenger entry door seal": "the seal on the {s} passenger door",
        "cockpit windshield": "the {s} flight deck windscreen",
        "engine cowl latch": "a cowling latch on the {s} engine",
        "engine fan blade": "a fan blade in the {s} engine",
        "thrust reverser sleeve": "the reverser sleeve on the {s} engine",
        "engine oil filter": "the oil filter of the {s} engine",
    },
    "reliability": {
        "air conditioning pack valve": "PFCV, {s} pack",
        "cabin pressure controller": "cabin pressure controller (CPC)",
        "generator control unit": "GCU pos {s}",
        "main battery": "main battery",
        "lavatory smoke detector": "lavatory smoke detector, {s} lav",
        "cargo fire detection loop": "cargo compartment fire detection loop, {s}",
        "aileron trim tab": "{s} aileron trim tab",
        "elevator hinge bracket": "{s} elevator hinge bracket",
        "rudder power control unit": "rudder PCU",
        "flap track fairing": "{s} flap track fairing",
        "fuel quantity indicator": "{s} tank FQIS indicator",
        "fuel boost pump": "{s} fuel boost pump",
        "engine driven hydraulic pump": "EDP pos {s}",
        "hydraulic reservoir": "hydraulic reservoir sys {s}",
        "pitot probe heater": "{s} pitot probe heater",
        "wing anti-ice valve": "{s} WAI valve",
        "main landing gear actuator": "{s} MLG retraction actuator",
        "nose wheel steering actuator": "NWS actuator",
        "brake assembly": "{s} MLG brake assembly",
        "main wheel tire": "{s} MLG tire",
        "landing light": "{s} landing light",
        "wingtip navigation light": "{s} wingtip nav light",
        "weather radar antenna": "WXR antenna",
        "standby altimeter": "standby altimeter",
        "crew oxygen mask": "{s} crew oxygen mask",
        "engine bleed air valve": "engine bleed valve pos {s}",
        "APU starter motor": "APU starter motor",
        "cargo door hinge": "{s} cargo door hinge",
        "passenger entry door seal": "{s} passenger entry door seal",
        "cockpit windshield": "{s} flight deck windshield",
        "engine cowl latch": "fan cowl latch, eng pos {s}",
        "engine fan blade": "fan blade, eng pos {s}",
        "thrust reverser sleeve": "T/R translating sleeve, eng pos {s}",
        "engine oil filter": "engine oil filter, pos {s}",
    },
    "nonnative": {
        "air conditioning pack valve": "pack valve of {s} air condition",
        "cabin pressure controller": "controller for the cabin pressure",
        "generator control unit": "generator control unit of {s}",
        "main battery": "main battery of aircraft",
        "lavatory smoke detector": "smoke detector of {s} lavatory",
        "cargo fire detection loop": "fire detect loop in {s} cargo",
        "aileron trim tab": "trim tab of {s} aileron",
        "elevator hinge bracket": "hinge bracket of {s} elevator",
        "rudder power control unit": "power control unit of rudder",
        "flap track fairing": "fairing of flap track, {s} wing",
        "fuel quantity indicator": "indicator of fuel quantity, {s} side",
        "fuel boost pump": "boost pump of fuel, {s} tank",
        "engine driven hydraulic pump": "hydraulic pump driven by {s}",
        "hydraulic reservoir": "reservoir of hydraulic {s}",
        "pitot probe heater": "heater of pitot probe {s}",
        "wing anti-ice valve": "anti ice valve of {s} wing",
        "main landing gear actuator": "actuator of {s} main landing gear",
        "nose wheel steering actuator": "actuator for steering of nose wheel",
        "brake assembly": "brake of {s} main wheel",
        "main wheel tire": "tire of {s} main wheel",
        "landing light": "{s} landing light",
        "wingtip navigation light": "navigation light on {s} wing tip",
        "weather radar antenna": "antenna of weather radar",
        "standby altimeter": "standby altimeter",
        "crew oxygen mask": "oxygen mask of crew, {s}",
        "engine bleed air valve": "bleed air valve of {s}",
        "APU starter motor": "starter motor of APU",
        "cargo door hinge": "hinge of {s} cargo door",
        "passenger entry door seal": "seal of {s} passenger door",
        "cockpit windshield": "{s} windshield of cockpit",
        "engine cowl latch": "latch of cowl on {s}",
        "engine fan blade": "fan blade of {s}",
        "thrust reverser sleeve": "reverser sleeve of {s}",
        "engine oil filter": "oil filter of {s}",
    },
    "apprentice": {
        "air conditioning pack valve": "the valve on the {s} air-con pack down in the belly",
        "cabin pressure controller": "the controller box that decides how pressurised the cabin gets",
        "generator control unit": "the black box in the avionics bay that manages {s}'s generator",
        "main battery": "the big main battery in the avionics bay that powers everything up",
        "lavatory smoke detector": "the little round smoke sniffer on the ceiling of the {s} loo",
        "cargo fire detection loop": "the wire loop running round the {s} baggage hold that senses fire",
        "aileron trim tab": "the small hinged bit on the back edge of the {s} aileron",
        "elevator hinge bracket": "the metal hinge piece holding the {s} elevator onto the tailplane",
        "rudder power control unit": "the hydraulic unit in the tail that pushes the rudder",
        "flap track fairing": "the canoe-shaped cover under the {s} wing hiding the flap rails",
        "fuel quantity indicator": "the cockpit readout of how much fuel is on the {s} side",
        "fuel boost pump": "the electric pump sitting inside the {s} wing tank",
        "engine driven hydraulic pump": "the hydraulic pump hanging on {s}'s accessory gearbox",
        "hydraulic reservoir": "the fluid tank of the {s} hydraulic system",
        "pitot probe heater": "the heater warming the little airspeed tube poking out of the nose on the {s} side",
        "wing anti-ice valve": "the valve sending hot air into the {s} wing's leading edge against ice",
        "main landing gear actuator": "the big piston that folds the {s} main gear leg up",
        "nose wheel steering actuator": "the piston thing that turns the front wheels",
        "brake assembly": "the disc brake on the {s} main wheels",
        "main wheel tire": "the tyre on one of the {s} big wheels",
        "landing light": "the big bright lamp on the {s} side you switch on for landing",
        "wingtip navigation light": "the little coloured light right at the {s} wingtip",
        "weather radar antenna": "the plate that sweeps around under the nose cone spotting storms",
        "standby altimeter": "the little spare altitude dial on the panel",
        "crew oxygen mask": "the pilot's pop-out oxygen mask next to the {s} seat",
        "engine bleed air valve": "the valve letting hot compressed air out of {s} into the ducts",
        "APU starter motor": "the motor that cranks the little engine in the tail",
        "cargo door hinge": "the hinge of the {s} hold door where the bags go in",
        "passenger entry door seal": "the rubber strip round the {s} door passengers come in by",
        "cockpit windshield": "the {s} big front window of the cockpit",
        "engine cowl latch": "one of the catches under {s}'s cowling that keep it shut",
        "engine fan blade": "one of the big blades you see at the front of {s}",
        "thrust reverser sleeve": "the back part of {s} that slides open to push air forward on landing",
        "engine oil filter": "the filter that cleans the oil of {s}",
    },
}
V6_PARTS["cabin_seen"] = V6_PARTS["cabin"]

# Per form, the words put in place of "{s}" for each side of pipelines.synthetic.documents.
V6_SIDES: dict[str, dict[str, str]] = {
    "mcc": {"left": "lh", "right": "rh", "number 1": "no1", "number 2": "no2", "forward": "fwd", "aft": "aft",
            "captain side": "P1", "first officer side": "P2", "system A": "A", "system B": "B"},
    "cabin": {"left": "left", "right": "right", "number 1": "number one", "number 2": "number two",
              "forward": "forward", "aft": "aft", "captain side": "captain's",
              "first officer side": "first officer's", "system A": "A", "system B": "B"},
    # what cabin crew and passengers call the sides of what they see for themselves (engine one is the left one)
    "cabin_seen": {"left": "left", "right": "right", "number 1": "left", "number 2": "right",
                   "forward": "forward", "aft": "aft", "captain side": "captain's",
                   "first officer side": "first officer's", "system A": "A", "system B": "B"},
    "reliability": {"left": "left", "right": "right", "number 1": "1", "number 2": "2", "forward": "fwd",
                    "aft": "aft", "captain side": "Capt", "first officer side": "F/O", "system A": "A",
                    "system B": "B"},
    "nonnative": {"left": "left", "right": "right", "number 1": "engine number 1", "number 2": "engine number 2",
                  "forward": "front", "aft": "back", "captain side": "captain side",
                  "first officer side": "copilot side", "system A": "system A", "system B": "system B"},
    "apprentice": {"left": "left", "right": "right", "number 1": "the number one engine",
                   "number 2": "the number two engine", "forward": "front", "aft": "back",
                   "captain side": "captain's", "first officer side": "co-pilot's", "system A": "A",
                   "system B": "B"},
}

# What leaks, per form: by the component's fluid, or (for components without one) by the component itself.
V6_FLUIDS: dict[str, dict[str | None, str]] = {
    "mcc": {"hydraulic fluid": "hydraulic", "fuel": "fuel", "engine oil": "oil"},
    "cabin": {"hydraulic fluid": "hydraulic fluid", "fuel": "fuel", "engine oil": "oil"},
    "cabin_seen": {"hydraulic fluid": "fluid", "fuel": "fuel", "engine oil": "oil"},
    "reliability": {"hydraulic fluid": "hydraulic fluid", "fuel": "fuel", "engine oil": "oil"},
    "nonnative": {"hydraulic fluid": "hydraulic oil", "fuel": "fuel", "engine oil": "engine oil"},
    "apprentice": {"hydraulic fluid": "hydraulic fluid", "fuel": "fuel", "engine oil": "oil"},
}
V6_GASES: dict[str, dict[str, str]] = {
    "mcc": {"crew oxygen mask": "O2", "engine bleed air valve": "bleed air", "passenger entry door seal": "air"},
    "cabin": {"crew oxygen mask": "oxygen", "engine bleed air valve": "bleed air",
              "passenger entry door seal": "air"},
    "cabin_seen": {"crew oxygen mask": "oxygen", "engine bleed air valve": "bleed air",
                   "passenger entry door seal": "air"},
    "reliability": {"crew oxygen mask": "oxygen", "engine bleed air valve": "bleed air",
                    "passenger entry door seal": "cabin air"},
    "nonnative": {"crew oxygen mask": "oxygen", "engine bleed air valve": "hot air",
                  "passenger entry door seal": "air"},
    "apprentice": {"crew oxygen mask": "oxygen", "engine bleed air valve": "hot air",
                   "passenger entry door seal": "air"},
}

# Per form and symptom, one or two templates ({p} the part with its side, {fluid} what leaks); which one is used
# is chosen by the hash too. "leak_gas" is used instead of "leak" for components without a fluid. The cabin form
# has three sets: "cabin" (relayed from the flight deck), "cabin_seen" and "cabin_window".
V6_SYMPTOMS: dict[str, dict[str, tuple[str, ...]]] = {
    "mcc": {
        "leak": ("mcc, on stand with {p} leaking {fluid}, doing leak rate chk now",
                 "hi mcc, {fluid} drips from {p} at turnaround, pls advise dispatch"),
        "leak_gas": ("mcc, {p} leaking {fluid} on gnd test, pls advise",),
        "crack": ("mcc: {p} found cracked at turnaround, need eng'g disposition",
                  "hi mcc, crack on {p}, photos on the way"),
        "corrosion": ("mcc fyi, {p} has corrosion, found at turnaround, need limits",),
        "chafing": ("mcc: found chafe on wires at {p}, insulation damaged, pls advise",),
        "inoperative": ("mcc, {p} failed ops check, request MEL relief",
                        "hi mcc, {p} not working after CB reset, spare avail?"),
        "intermittent": ("mcc: crew wrote up {p} intermittent, checks ok on gnd, pls advise",),
        "wear": ("mcc: {p} worn past limits at transit chk, need a spare here",),
        "loose": ("mcc: {p} loose, couple of fasteners backed off, pls advise",),
        "noise": ("mcc, {p} making abnormal noise on gnd run, pls advise",),
        "vibration": ("mcc: crew reported vibration from {p}, need troubleshooting help",),
        "damage": ("mcc: {p} damaged, found on walkround, pics sent to eng'g",),
        "overheat": ("mcc: crew had overheat on {p}, what do you want us to do?",),
        "low_pressure": ("mcc: {p} showing low pressure, pls advise",),
        "low_voltage": ("mcc: {p} low volts at power up, on charger now",),
        "delamination": ("mcc: {p} delaminated, pics sent, pls confirm limits",),
        "contamination": ("mcc: metal found in {p} at chk, pls advise next steps",),
    },
    "cabin": {
        "leak": ("the flight deck asked me to report {fluid} leaking from {p}",
                 "captain says there is a {fluid} leak at {p}, please pass to engineers"),
        "leak_gas": ("pilots told us {p} is leaking {fluid}",),
        "crack": ("pilots asked us to note that {p} is cracked",),
        "corrosion": ("ground crew told the captain there is corrosion on {p}",),
        "chafing": ("flight crew passed on that the wires at {p} are chafed",),
        "inoperative": ("captain said {p} stopped working and asked cabin to log it",
                        "flight deck told us {p} is not working"),
        "intermittent": ("flight deck mentioned {p} kept dropping out then working again",),
        "wear": ("captain mentioned ground staff found {p} badly worn",),
        "loose": ("flight deck told us {p} was found loose",),
        "noise": ("flight deck reported an unusual noise from {p}",),
        "vibration": ("vibration felt through the cabin floor, flight deck says it is {p}",),
        "damage": ("captain told us {p} is damaged",),
        "overheat": ("flight deck had an overheat warning for {p} and asked us to report it",),
        "low_pressure": ("pilots mentioned low pressure on {p}",),
        "low_voltage": ("captain said {p} is showing low voltage",),
        "delamination": ("captain says {p} is delaminating, the glass looks cloudy",),
        "contamination": ("engineers told the captain they found metal in {p}",),
    },
    "cabin_seen": {
        "leak_gas": ("loud whistle of {fluid} leaking past {p} in cruise",),
        "inoperative": ("during our cabin check {p} showed no test light, seems dead",),
        "intermittent": ("{p} keeps alarming on and off with no smoke at all",),
        "damage": ("{p} is ripped, we noticed it at boarding",),
        "wear": ("{p} looks worn flat, we noticed it at boarding",),
    },
    "cabin_window": {
        "leak": ("a passenger saw {fluid} streaming off {p} after landing",),
        "crack": ("a passenger in a window seat pointed out a crack in {p}",),
        "loose": ("a window passenger showed us {p} flapping about, looks loose",),
        "wear": ("a passenger by the window asked about {p}, it looks very worn",),
        "damage": ("a passenger sent us a photo of {p}, clearly damaged",),
        "inoperative": ("passengers noticed {p} stayed dark when it should be on",),
        "intermittent": ("a passenger noticed {p} flickering on and off",),
        "noise": ("passengers near the wing heard a loud bang from {p} on landing",),
    },
    "reliability": {
        "leak": ("{fluid} leak trend, {p}, last 12 months", "repeat {fluid} leakage events on {p}, fleet-wide"),
        "leak_gas": ("{fluid} leakage events trend: {p}",),
        "crack": ("{p}: crack findings, fleet trend by month",),
        "corrosion": ("{p}: corrosion findings rate, fleet trend",),
        "chafing": ("{p}: wire chafe findings, recurrence by tail",),
        "inoperative": ("{p}: inoperative, unscheduled removals and MTBUR", "{p}: failures, removal rate trend"),
        "intermittent": ("{p}: intermittent faults, repeat PIREPs and NFF rate",),
        "wear": ("{p}: wear-out replacements, fleet trend",),
        "loose": ("{p}: loose fastener findings, recurrence rate",),
        "noise": ("{p}: abnormal noise PIREPs, repeat defect trend",),
        "vibration": ("{p}: vibration PIREPs, trend over 12 months",),
        "damage": ("{p}: damage findings rate per 1000 FH",),
        "overheat": ("{p}: overheat events, fleet trend",),
        "low_pressure": ("{p}: low pressure defects, repeat trend",),
        "low_voltage": ("{p}: low voltage findings, trend by month",),
        "delamination": ("{p}: delamination removals, fleet trend",),
        "contamination": ("{p}: metal contamination findings, chip detection trend",),
    },
    "nonnative": {
        "leak": ("{p} is leak {fluid}, I see drops on the floor",
                 "there is {fluid} leaking from {p}, very wet"),
        "leak_gas": ("{p} have leak of {fluid}, I can hear it",),
        "crack": ("I find crack on {p}, it is long one",),
        "corrosion": ("{p} have corrosion, need to clean it",),
        "chafing": ("the wire near {p} is chafe, the insulation is open",),
        "inoperative": ("{p} not work at all, I make test and nothing",),
        "intermittent": ("{p} is fail and then come back, not all the time",),
        "wear": ("{p} is wear too much, more than the limit",),
        "loose": ("{p} is loose, the fasteners not tight",),
        "noise": ("{p} make bad noise, not normal",),
        "vibration": ("{p} is vibrate too much",),
        "damage": ("{p} have damage on it, need check",),
        "overheat": ("{p} become too hot, there is overheat warning",),
        "low_pressure": ("{p} pressure is too low, less than it must be",),
        "low_voltage": ("{p} voltage is too low, not enough",),
        "delamination": ("{p} have delamination, the layer is separate",),
        "contamination": ("I find metal pieces inside {p}",),
    },
    "apprentice": {
        "leak": ("{fluid} dripping out of {p}, is that bad?",),
        "leak_gas": ("{fluid} hissing out of {p}",),
        "crack": ("found a crack in {p}",),
        "corrosion": ("{p} has gone all rusty looking",),
        "chafing": ("the wires next to {p} are rubbed through",),
        "inoperative": ("{p} does nothing at all when we test it",),
        "intermittent": ("{p} works, then stops, then works again",),
        "wear": ("there's a lot of wear on {p}",),
        "loose": ("{p} feels loose, the screws aren't tight",),
        "noise": ("{p} makes a funny sound",),
        "vibration": ("{p} shakes a lot",),
        "damage": ("{p} got knocked and is damaged",),
        "overheat": ("{p} gets too hot",),
        "low_pressure": ("the pressure reads too low on {p}",),
        "low_voltage": ("the voltage reads low on {p}",),
        "delamination": ("{p} has layers coming apart inside the glass",),
        "contamination": ("found shiny metal bits in {p}",),
    },
}


def _digest(finding) -> bytes:
    return hashlib.sha256(finding.key.encode("utf-8")).digest()


def v6_form(finding) -> str:
    """Which of FORMS a finding's query is written in (stable across runs and machines)."""
    return FORMS[_digest(finding)[0] % len(FORMS)]


def v6_build(finding, form: str) -> str:
    """The query for a finding in a given form (v6_query uses the form its hash picks)."""
    from pipelines.synthetic.documents import COMPONENTS

    digest = _digest(finding)
    fluid = next(c[4] for c in COMPONENTS if c[1] == finding.component)
    symptom = "leak_gas" if finding.symptom == "leak" and not fluid else finding.symptom
    words, table = form, form
    if form == "cabin":
        seen = CABIN_CLASS.get(finding.component, "relayed")
        if seen != "relayed" and symptom in V6_SYMPTOMS[f"cabin_{seen}"]:
            words, table = "cabin_seen", f"cabin_{seen}"
    side = V6_SIDES[words][finding.side] if finding.side else ""
    part = " ".join(V6_PARTS[words][finding.component].format(s=side).split())
    leaks = V6_GASES[words][finding.component] if symptom == "leak_gas" else (V6_FLUIDS[words][fluid] if fluid else "")
    templates = V6_SYMPTOMS[table][symptom]
    query = templates[digest[1] % len(templates)].format(p=part, fluid=leaks)
    return query[0].upper() + query[1:] if form in ("cabin", "nonnative", "apprentice") else query


def v6_query(finding) -> str:
    """A query for a finding in the sixth held-out words above, its form chosen by a stable hash of its key."""
    return v6_build(finding, v6_form(finding))
