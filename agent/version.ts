/** The agent's version, reported at enrolment and in every heartbeat. Kept in step with package.json by a test. */
export const AGENT_VERSION = '0.1.0';
