/**
 * oidcc-basic-certification-test-plan (Basic OP): one test per module, named after it.
 * The modules are defined once, in basic-module-tests.ts, for this plan and Form Post OP.
 */
import { defineBasicPlan } from './basic-modules.js';
import { BASIC_MODULES } from './basic-module-tests.js';

defineBasicPlan('oidcc-basic-certification-test-plan', 'query', BASIC_MODULES);
