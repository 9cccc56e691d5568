/**
 * Staff- and admin-facing strings. Japanese is the default; English is the second language. Keys
 * are stable; a missing English string falls back to Japanese, never to the key.
 */
export type Locale = 'ja' | 'en';
export const DEFAULT_LOCALE: Locale = 'ja';

const ja = {
  'app.name': '関守 (Sekimori)',
  'app.tagline': '端末保護サービス',
  'status.title': '端末の状態',
  'status.agentUnavailable': '保護サービスに接続できません',
  'status.unenforced': '保護されていません (USB機器の制御が無効)',
  'status.protected': '保護されています',
  'status.offline': 'サーバーと通信できません',
  'status.pending': '状態を確認しています…',
} as const;

export type MessageKey = keyof typeof ja;

const en: Partial<Record<MessageKey, string>> = {
  'app.name': 'Sekimori',
  'app.tagline': 'Endpoint protection service',
  'status.title': 'Terminal status',
  'status.agentUnavailable': 'Cannot connect to the protection service',
  'status.unenforced': 'Not protected (USB device control is off)',
  'status.protected': 'Protected',
  'status.offline': 'Cannot reach the server',
  'status.pending': 'Checking status…',
};

const catalogs: Record<Locale, Partial<Record<MessageKey, string>>> = { ja, en };

/** The string for `key` in `locale` (Japanese when the locale lacks it). */
export function t(key: MessageKey, locale: Locale = DEFAULT_LOCALE): string {
  return catalogs[locale][key] ?? ja[key];
}

/** Picks a supported locale from a BCP 47 tag (`en-US` → `en`); Japanese otherwise. */
export function pickLocale(tag: string | undefined | null): Locale {
  return tag?.toLowerCase().startsWith('en') ? 'en' : DEFAULT_LOCALE;
}
