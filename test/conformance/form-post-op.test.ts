/**
 * oidcc-formpost-basic-certification-test-plan (Form Post OP): the Basic OP modules with
 * response_mode=form_post; every response must arrive as a form POST to the redirect URI.
 */
import { defineBasicPlan } from './basic-modules.js';
import { BASIC_MODULES } from './basic-module-tests.js';

defineBasicPlan('oidcc-formpost-basic-certification-test-plan', 'form_post', BASIC_MODULES);
