"""A fifth, fresh held-out set of search queries for the document search quality benchmark.

Written on 2026-12-05 by a helper session that was kept BLIND to the search implementation: it did not open
pipelines/documents/ (search, index, embedding, synonym or abbreviation tables), tests/documents/ nor the
README's search section, and it never ran the benchmark, any search or any embedding model. It knew only the
component names, sides, symptoms and fluids of pipelines.synthetic.documents, and read the earlier query sets
(paraphrase and held_out in benchmarks/documents.py, benchmarks/search_queries_v3.py and
benchmarks/search_queries_v4.py) only to avoid their wording and to copy v4's structure.

Voice: five people around an airline's maintenance, each typing into the search box in their own words. Five
forms, chosen per finding by a stable hash of its key (hashlib sha256, not Python's salted hash()):

- "line": a line mechanic's terse shift-handover note, with the shop's own shorthand ("E2 GCU intermittent,
  not duplicated on gnd, pls chase");
- "pilot": a pilot's tech-log complaint in flight-crew words, the system named as the crew knows it, what was
  seen, heard or felt in the cockpit, the cabin or on the walkaround ("CA PITOT HEAT failed in flight, no
  response to reset");
- "manager": a maintenance-control or fleet manager asking about recurring defects ("how many times have we
  found the left-hand cargo door hinge cracked?");
- "describe": someone who does not know the part's name, describing it by what it does and where it sits ("the
  rubber gasket round the passenger boarding door nearer the tail is torn");
- "formal": formal engineering / ATA-style wording with illustrated-parts-catalogue nomenclature and chapter
  numbers ("ATA 29-11 RESERVOIR, HYDRAULIC - SYSTEM B: pressure below minimum").

NEVER tune on this set (weights, vocabulary, synonyms, thresholds): it is scored once, and its figure is only
honest as long as nothing was changed after looking at it.
"""

from __future__ import annotations

import hashlib

FORMS = ("line", "pilot", "manager", "describe", "formal")

# Per form, one name per component of pipelines.synthetic.documents.COMPONENTS (keyed by its document name);
# "{s}" is where the side goes (components without a side have none).
V5_PARTS: dict[str, dict[str, str]] = {
    "line": {
        "air conditioning pack valve": "{s} pack FCV",
        "cabin pressure controller": "CPC",
        "generator control unit": "{s} GCU",
        "main battery": "a/c main batt",
        "lavatory smoke detector": "{s} lav SD",
        "cargo fire detection loop": "{s} hold FD loop",
        "aileron trim tab": "{s} ail T/tab",
        "elevator hinge bracket": "{s} elev hinge fttg",
        "rudder power control unit": "rud PCU",
        "flap track fairing": "{s} FTF",
        "fuel quantity indicator": "{s} FQ ind",
        "fuel boost pump": "{s} tank boost pp",
        "engine driven hydraulic pump": "{s} EDP",
        "hydraulic reservoir": "sys {s} hyd rez",
        "pitot probe heater": "{s} pitot htg",
        "wing anti-ice valve": "{s} WAIV",
        "main landing gear actuator": "{s} MLG ret actr",
        "nose wheel steering actuator": "nose whl steer cyl",
        "brake assembly": "{s} MLG brk",
        "main wheel tire": "{s} mn whl tyre",
        "landing light": "{s} ldg lamp",
        "wingtip navigation light": "{s} tip nav lite",
        "weather radar antenna": "wx rdr ant",
        "standby altimeter": "STBY ALTM",
        "crew oxygen mask": "{s} O2 mask",
        "engine bleed air valve": "{s} bleed SOV",
        "APU starter motor": "APU str mtr",
        "cargo door hinge": "{s} hold door hinge",
        "passenger entry door seal": "{s} entry dr seal",
        "cockpit windshield": "{s} W/screen",
        "engine cowl latch": "{s} cowl ltch",
        "engine fan blade": "{s} fan bld",
        "thrust reverser sleeve": "{s} thr rev sleeve",
        "engine oil filter": "{s} L/O filter",
    },
    "pilot": {
        "air conditioning pack valve": "{s} PACK valve",
        "cabin pressure controller": "pressurization auto controller",
        "generator control unit": "{s} gen control unit",
        "main battery": "main BAT",
        "lavatory smoke detector": "{s} lav smoke sensor",
        "cargo fire detection loop": "{s} hold fire detection loop",
        "aileron trim tab": "tab on the {s} aileron",
        "elevator hinge bracket": "{s} elevator hinge bracket",
        "rudder power control unit": "rudder power unit",
        "flap track fairing": "{s} wing flap fairing",
        "fuel quantity indicator": "{s} FUEL QTY indication",
        "fuel boost pump": "{s} wing fuel pump",
        "engine driven hydraulic pump": "{s} hydraulic pump",
        "hydraulic reservoir": "{s} hyd reservoir",
        "pitot probe heater": "{s} PITOT HEAT",
        "wing anti-ice valve": "{s} WING ANTI-ICE valve",
        "main landing gear actuator": "{s} main gear up/down actuator",
        "nose wheel steering actuator": "nose steering ram",
        "brake assembly": "{s} main brakes",
        "main wheel tire": "{s} main gear tire",
        "landing light": "{s} landing light",
        "wingtip navigation light": "{s} NAV light",
        "weather radar antenna": "WX radar",
        "standby altimeter": "STBY altimeter",
        "crew oxygen mask": "{s} O2 mask",
        "engine bleed air valve": "{s} BLEED valve",
        "APU starter motor": "APU starter",
        "cargo door hinge": "{s} cargo door hinge",
        "passenger entry door seal": "{s} entry door seal",
        "cockpit windshield": "{s} front windshield",
        "engine cowl latch": "{s} cowl latch",
        "engine fan blade": "{s} fan blade",
        "thrust reverser sleeve": "{s} thrust reverser",
        "engine oil filter": "{s} oil filter",
    },
    "manager": {
        "air conditioning pack valve": "the {s} air-con pack valve",
        "cabin pressure controller": "the cabin pressure controller",
        "generator control unit": "the {s} GCU",
        "main battery": "the main battery",
        "lavatory smoke detector": "the {s} lav smoke detector",
        "cargo fire detection loop": "the {s} cargo fire loop",
        "aileron trim tab": "the {s} aileron trim tab",
        "elevator hinge bracket": "the {s} elevator hinge bracket",
        "rudder power control unit": "the rudder PCU",
        "flap track fairing": "the {s} flap track fairing",
        "fuel quantity indicator": "the {s} fuel quantity indication",
        "fuel boost pump": "the {s} boost pump",
        "engine driven hydraulic pump": "the {s} engine-driven pump",
        "hydraulic reservoir": "the {s} hydraulic reservoir",
        "pitot probe heater": "the {s} pitot heat",
        "wing anti-ice valve": "the {s} wing anti-ice valve",
        "main landing gear actuator": "the {s} main gear actuator",
        "nose wheel steering actuator": "the nose wheel steering actuator",
        "brake assembly": "the {s} brakes",
        "main wheel tire": "the {s} main wheel tires",
        "landing light": "the {s} landing light",
        "wingtip navigation light": "the {s} nav light",
        "weather radar antenna": "the weather radar antenna",
        "standby altimeter": "the standby altimeter",
        "crew oxygen mask": "the {s} crew oxygen mask",
        "engine bleed air valve": "the {s} bleed valve",
        "APU starter motor": "the APU starter",
        "cargo door hinge": "the {s} cargo door hinge",
        "passenger entry door seal": "the {s} entry door seal",
        "cockpit windshield": "the {s} windshield",
        "engine cowl latch": "the {s} cowl latch",
        "engine fan blade": "the {s} fan blades",
        "thrust reverser sleeve": "the {s} thrust reverser sleeve",
        "engine oil filter": "the {s} oil filter",
    },
    "describe": {
        "air conditioning pack valve": "the valve feeding air into the {s} cooling unit under the belly",
        "cabin pressure controller": "the automatic box that keeps the cabin pressurised",
        "generator control unit": "the electronics box managing the electrical generator on {s}",
        "main battery": "the rechargeable battery that powers things up when the plane is cold",
        "lavatory smoke detector": "the smoke warning unit in the ceiling of the toilet {s}",
        "cargo fire detection loop": "the heat-sensitive tube that warns of fire in the luggage hold {s}",
        "aileron trim tab": "the little hinged strip on the {s} wing's roll control surface",
        "elevator hinge bracket": "the mounting the {s} moving part of the horizontal tail swings on",
        "rudder power control unit": "the hydraulic box that pushes the tail fin's steering surface",
        "flap track fairing": "the long pod under the {s} wing covering the flap rails",
        "fuel quantity indicator": "the display saying how much fuel is left in the {s} wing",
        "fuel boost pump": "the electric pump in the {s} fuel tank that pressurises the feed line",
        "engine driven hydraulic pump": "the pump on {s} that makes hydraulic pressure while it runs",
        "hydraulic reservoir": "the fluid container for the {s} hydraulic circuit",
        "pitot probe heater": "the heater that stops ice forming on the {s} airspeed probe",
        "wing anti-ice valve": "the valve sending warm engine air to melt ice off the {s} wing's front edge",
        "main landing gear actuator": "the big hydraulic cylinder that swings the {s} main wheels up into the wing",
        "nose wheel steering actuator": "the hydraulic piston that points the front wheels left and right",
        "brake assembly": "the stack of stopping discs inside the {s} main wheels",
        "main wheel tire": "the tyre on the {s} set of big wheels under the wing",
        "landing light": "the bright lamp on the {s} side that lights up the runway",
        "wingtip navigation light": "the coloured marker light at the very tip of the {s} wing",
        "weather radar antenna": "the dish in the nose that scans ahead for storms",
        "standby altimeter": "the spare height gauge on the instrument panel",
        "crew oxygen mask": "the emergency breathing mask stowed by the {s} seat",
        "engine bleed air valve": "the valve tapping hot compressed air off {s}",
        "APU starter motor": "the electric motor that spins up the little engine in the tail cone",
        "cargo door hinge": "the hinge on the luggage hold door {s}",
        "passenger entry door seal": "the rubber gasket round the passenger boarding door {s}",
        "cockpit windshield": "the {s} big front window the pilots look through",
        "engine cowl latch": "the catch that locks the engine cover shut on {s}",
        "engine fan blade": "one of the big front blades of {s}",
        "thrust reverser sleeve": "the sliding rear section of {s} that opens up to help stop after landing",
        "engine oil filter": "the filter cleaning the lubricating oil of {s}",
    },
    "formal": {
        "air conditioning pack valve": "ATA 21-51 VALVE, PACK FLOW CONTROL AND SHUTOFF - {s}",
        "cabin pressure controller": "ATA 21-31 CONTROLLER, CABIN PRESSURE - AUTOMATIC",
        "generator control unit": "ATA 24-22 UNIT, GENERATOR CONTROL - ENGINE POSITION {s}",
        "main battery": "ATA 24-31 BATTERY ASSY, MAIN",
        "lavatory smoke detector": "DETECTOR, SMOKE - LAVATORY {s}",
        "cargo fire detection loop": "ATA 26-16 DETECTOR LOOP, CARGO COMPARTMENT FIRE - {s}",
        "aileron trim tab": "ATA 27-11 TAB, AILERON TRIM - {s}",
        "elevator hinge bracket": "ATA 27-31 BRACKET, ELEVATOR HINGE - {s}",
        "rudder power control unit": "ATA 27-21 POWER CONTROL UNIT, RUDDER",
        "flap track fairing": "ATA 27-51 FAIRING, FLAP TRACK - {s} WING",
        "fuel quantity indicator": "ATA 28-41 INDICATOR, FUEL QUANTITY - {s} TANK",
        "fuel boost pump": "ATA 28-22 PUMP, FUEL BOOST - {s} MAIN TANK",
        "engine driven hydraulic pump": "ATA 29-11 PUMP, HYDRAULIC, ENGINE DRIVEN - ENGINE POSITION {s}",
        "hydraulic reservoir": "ATA 29-11 RESERVOIR, HYDRAULIC - SYSTEM {s}",
        "pitot probe heater": "ATA 30-31 HEATER, PITOT PROBE - {s}",
        "wing anti-ice valve": "ATA 30-11 VALVE, WING ANTI-ICE - {s}",
        "main landing gear actuator": "ATA 32-31 ACTUATOR, MAIN LANDING GEAR RETRACTION - {s}",
        "nose wheel steering actuator": "ATA 32-51 ACTUATOR, NOSE WHEEL STEERING",
        "brake assembly": "ATA 32-42 BRAKE ASSY, MAIN WHEEL - {s}",
        "main wheel tire": "ATA 32-41 TIRE, MAIN WHEEL - {s}",
        "landing light": "ATA 33-42 LIGHT, LANDING - {s}",
        "wingtip navigation light": "ATA 33-43 LIGHT, NAVIGATION - {s} WINGTIP",
        "weather radar antenna": "ATA 34-41 ANTENNA, WEATHER RADAR",
        "standby altimeter": "ATA 34-13 ALTIMETER, STANDBY",
        "crew oxygen mask": "ATA 35-11 MASK, CREW OXYGEN - {s} STATION",
        "engine bleed air valve": "ATA 36-11 VALVE, ENGINE BLEED AIR - ENGINE POSITION {s}",
        "APU starter motor": "ATA 49-41 MOTOR, APU STARTER",
        "cargo door hinge": "ATA 52-30 HINGE, CARGO DOOR - {s}",
        "passenger entry door seal": "ATA 52-10 SEAL, PASSENGER ENTRY DOOR - {s}",
        "cockpit windshield": "ATA 56-11 WINDSHIELD, FLIGHT COMPARTMENT - {s}",
        "engine cowl latch": "ATA 71-11 LATCH, ENGINE COWL - ENGINE POSITION {s}",
        "engine fan blade": "ATA 72-21 BLADE, FAN - ENGINE POSITION {s}",
        "thrust reverser sleeve": "ATA 78-31 SLEEVE, THRUST REVERSER TRANSLATING - ENGINE POSITION {s}",
        "engine oil filter": "ATA 79-21 FILTER, ENGINE OIL - ENGINE POSITION {s}",
    },
}

# Per form, the words put in place of "{s}" for each side of pipelines.synthetic.documents.
V5_SIDES: dict[str, dict[str, str]] = {
    "line": {"left": "LHS", "right": "RHS", "number 1": "E1", "number 2": "E2", "forward": "FWD", "aft": "AFT",
             "captain side": "CM1", "first officer side": "CM2", "system A": "A", "system B": "B"},
    "pilot": {"left": "left", "right": "right", "number 1": "engine one", "number 2": "engine two",
              "forward": "forward", "aft": "aft", "captain side": "CA", "first officer side": "FO",
              "system A": "A system", "system B": "B system"},
    "manager": {"left": "left-hand", "right": "right-hand", "number 1": "engine 1", "number 2": "engine 2",
                "forward": "forward", "aft": "aft", "captain side": "captain-side",
                "first officer side": "FO-side", "system A": "system A", "system B": "system B"},
    "describe": {"left": "left", "right": "right", "number 1": "the first engine", "number 2": "the second engine",
                 "forward": "nearer the nose", "aft": "nearer the tail", "captain side": "captain's",
                 "first officer side": "second pilot's", "system A": "A", "system B": "B"},
    "formal": {"left": "LH", "right": "RH", "number 1": "1", "number 2": "2", "forward": "FWD", "aft": "AFT",
               "captain side": "CAPTAIN", "first officer side": "FIRST OFFICER", "system A": "A", "system B": "B"},
}

# What leaks, per form: by the component's fluid, or (for components without one) by the component itself.
V5_FLUIDS: dict[str, dict[str | None, str]] = {
    "line": {"hydraulic fluid": "hyd oil", "fuel": "fuel", "engine oil": "eng oil"},
    "pilot": {"hydraulic fluid": "hydraulic fluid", "fuel": "fuel", "engine oil": "oil"},
    "manager": {"hydraulic fluid": "hydraulic", "fuel": "fuel", "engine oil": "oil"},
    "describe": {"hydraulic fluid": "hydraulic fluid", "fuel": "fuel", "engine oil": "engine oil"},
    "formal": {"hydraulic fluid": "hydraulic fluid", "fuel": "fuel", "engine oil": "lubricating oil"},
}
V5_GASES: dict[str, dict[str, str]] = {
    "line": {"crew oxygen mask": "O2", "engine bleed air valve": "bleed air", "passenger entry door seal": "press air"},
    "pilot": {"crew oxygen mask": "oxygen", "engine bleed air valve": "hot air", "passenger entry door seal": "air"},
    "manager": {"crew oxygen mask": "oxygen", "engine bleed air valve": "bleed air",
                "passenger entry door seal": "air"},
    "describe": {"crew oxygen mask": "oxygen", "engine bleed air valve": "hot air",
                 "passenger entry door seal": "cabin air"},
    "formal": {"crew oxygen mask": "oxygen", "engine bleed air valve": "bleed air",
               "passenger entry door seal": "cabin pressurisation air"},
}

# Per form and symptom, one or two templates ({p} the part with its side, {fluid} what leaks); which one is used
# is chosen by the hash too. "leak_gas" is used instead of "leak" for components without a fluid.
V5_SYMPTOMS: dict[str, dict[str, tuple[str, ...]]] = {
    "line": {
        "leak": ("h/o: {p} leaking {fluid}, trace to be done next shift", "{p} {fluid} drip noted, not rectified"),
        "leak_gas": ("h/o: {p} leaking {fluid}, leak chk not done yet",),
        "crack": ("{p} cracked - NDT booked, c/fwd", "h/o: {p} crk found, eng'g advised"),
        "corrosion": ("{p} corr'n found, awaiting treatment", "h/o: corr'n on {p}, c/fwd to days"),
        "chafing": ("{p} wiring chafed thru, sleeving req'd, c/fwd",),
        "inoperative": ("{p} INOP, MEL'd, spare on order", "h/o: {p} dead on ops test, not fixed"),
        "intermittent": ("{p} intermittent, fault not duplicated on gnd, pls chase",),
        "wear": ("{p} worn past limits, change due next shift", "h/o: {p} wear o/limits, spare ordered"),
        "loose": ("{p} loose, fasteners need re-torque, c/fwd",),
        "noise": ("{p} noisy on gnd run, not cleared", "h/o: odd noise {p}, TBC"),
        "vibration": ("{p} vibs reported, not found on gnd run, TBC",),
        "damage": ("{p} damaged, eng'g to assess, c/fwd", "h/o: dmg on {p} found on W/A"),
        "overheat": ("{p} o/heat msg, fault still open", "h/o: {p} overheating, pls chase"),
        "low_pressure": ("{p} low press, re-serviced, monitor",),
        "low_voltage": ("{p} low volts on chk, left on charge",),
        "delamination": ("{p} delam noted, eng'g to confirm limits",),
        "contamination": ("{p} chips found, oil sample sent, c/fwd",),
    },
    "pilot": {
        "leak": ("{fluid} dripping from {p} on walkaround", "{fluid} puddle under {p} at preflight"),
        "leak_gas": ("{p} leaking {fluid}, audible hissing",),
        "crack": ("crack seen in {p} during preflight walkaround",),
        "corrosion": ("corrosion visible on {p} at preflight",),
        "chafing": ("ramp crew pointed out chafed wires near {p}",),
        "inoperative": ("{p} not working, reset no help", "{p} gave nothing all flight, CB reset tried"),
        "intermittent": ("{p} fault came and went several times in cruise",),
        "wear": ("{p} looked badly worn on walkaround",),
        "loose": ("{p} found loose at preflight, rattling",),
        "noise": ("howling noise from {p} heard in flight",),
        "vibration": ("vibration from {p} felt in the cockpit",),
        "damage": ("{p} found damaged on preflight, please inspect",),
        "overheat": ("{p} overheat caution came on in climb",),
        "low_pressure": ("{p} low pressure indication on the panel",),
        "low_voltage": ("{p} volts low on preflight, under 24V",),
        "delamination": ("{p} delaminating, bubbles in my field of view",),
        "contamination": ("{p} bypass light on in cruise, suspect metal debris in oil",),
    },
    "manager": {
        "leak": ("how many {fluid} leaks have we logged on {p} this year?",
                 "have we had repeat {fluid} leaks on {p}?"),
        "leak_gas": ("how many {fluid} leaks have we had on {p}?",),
        "crack": ("how many times have we found {p} cracked?", "is cracking of {p} a repeat defect on the fleet?"),
        "corrosion": ("is corrosion on {p} a recurring finding?",),
        "chafing": ("how often have we found chafed wiring at {p}?",),
        "inoperative": ("have we had {p} unserviceable more than once?",
                        "how many times has {p} been written up as not working?"),
        "intermittent": ("how many repeat intermittent-fault write-ups on {p}?",),
        "wear": ("how many times have we changed {p} for wear this year?",),
        "loose": ("how many times have we found {p} loose?",),
        "noise": ("recurring noise complaints on {p} - how many?",),
        "vibration": ("have we had repeat vibration reports on {p}?",),
        "damage": ("how many damage events on {p} fleet-wide?",),
        "overheat": ("how many overheat write-ups have we had on {p}?",),
        "low_pressure": ("have we had repeat low-pressure defects on {p}?",),
        "low_voltage": ("how many low-voltage defects on {p} this year?",),
        "delamination": ("how many times have we replaced {p} for delamination?",),
        "contamination": ("have we had metal contamination findings in {p} across the fleet?",),
    },
    "describe": {
        "leak": ("{fluid} dribbling out of {p}",),
        "leak_gas": ("{fluid} escaping from {p}",),
        "crack": ("{p} has a crack running across it",),
        "corrosion": ("{p} is being eaten away by rust",),
        "chafing": ("the wires by {p} have rubbed bare",),
        "inoperative": ("{p} doesn't do anything anymore",),
        "intermittent": ("{p} sometimes works, sometimes doesn't",),
        "wear": ("{p} has worn thin",),
        "loose": ("{p} is wobbly, its fixings are not tight",),
        "noise": ("{p} is making a weird racket",),
        "vibration": ("{p} is juddering",),
        "damage": ("{p} got bashed in",),
        "overheat": ("{p} gets far too hot",),
        "low_pressure": ("{p} is low on pressure",),
        "low_voltage": ("{p} is running out of charge",),
        "delamination": ("{p} is peeling apart in layers",),
        "contamination": ("bits of metal turned up in {p}",),
    },
    "formal": {
        "leak": ("{p}: external {fluid} leakage exceeding limits",),
        "leak_gas": ("{p}: {fluid} leakage",),
        "crack": ("{p}: crack indication, NDT required",),
        "corrosion": ("{p}: surface corrosion beyond allowable limits",),
        "chafing": ("{p}: chafed wire bundle, insulation breached",),
        "inoperative": ("{p}: no function on operational test, unserviceable",),
        "intermittent": ("{p}: intermittent malfunction, fault not confirmed on ground",),
        "wear": ("{p}: wear exceeds CMM limits",),
        "loose": ("{p}: fasteners found below installation torque",),
        "noise": ("{p}: abnormal operating noise",),
        "vibration": ("{p}: vibration exceeding AMM limits",),
        "damage": ("{p}: impact damage, assess per SRM",),
        "overheat": ("{p}: over-temperature condition",),
        "low_pressure": ("{p}: pressure below minimum",),
        "low_voltage": ("{p}: terminal voltage below minimum",),
        "delamination": ("{p}: interlayer delamination",),
        "contamination": ("{p}: metallic debris on element, spectrometric oil analysis",),
    },
}


def _digest(finding) -> bytes:
    return hashlib.sha256(finding.key.encode("utf-8")).digest()


def v5_form(finding) -> str:
    """Which of FORMS a finding's query is written in (stable across runs and machines)."""
    return FORMS[_digest(finding)[0] % len(FORMS)]


def v5_query(finding) -> str:
    """A query for a finding in the fifth held-out words above, its form chosen by a stable hash of its key."""
    from pipelines.synthetic.documents import COMPONENTS

    digest = _digest(finding)
    form = FORMS[digest[0] % len(FORMS)]
    fluid = next(c[4] for c in COMPONENTS if c[1] == finding.component)
    side = V5_SIDES[form][finding.side] if finding.side else ""
    part = " ".join(V5_PARTS[form][finding.component].format(s=side).split())
    if finding.symptom == "leak" and not fluid:
        leaks, symptom = V5_GASES[form][finding.component], "leak_gas"
    else:
        leaks, symptom = (V5_FLUIDS[form][fluid] if fluid else ""), finding.symptom
    templates = V5_SYMPTOMS[form][symptom]
    query = templates[digest[1] % len(templates)].format(p=part, fluid=leaks)
    return query[0].upper() + query[1:] if form in ("pilot", "manager", "describe") else query
