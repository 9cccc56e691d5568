/** The server's notion of now; injected so tests can move time (token expiry) without waiting. */
export type Clock = () => Date;

export const systemClock: Clock = () => new Date();
