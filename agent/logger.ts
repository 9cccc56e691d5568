import winston from 'winston';

/**
 * Operational log (not the audit journal): JSON lines to stderr, which systemd's journal or the
 * Windows service wrapper collects and rotates. One child logger per subsystem.
 */
export function createLogger(level: string = process.env.SEKIMORI_LOG_LEVEL ?? 'info'): winston.Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'] })],
  });
}
