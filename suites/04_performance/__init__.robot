*** Settings ***
Documentation    Phase 4 (week 4): performance and load. Rates are kept within what the lab's 2-core machines
...              hold beside the other phases; `make bench` measures how far each part really goes.

Test Tags        phase-4    load
