// posthog-js-lite ships no script-tag build: a site bundles its ESM (and
// @posthog/core) like this, which is what the benchmark weighs and runs.
import { PostHog } from 'posthog-js-lite';
window.PostHogLite = PostHog;
