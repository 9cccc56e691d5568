import { pickLocale, t } from '../shared/i18n.js';

/**
 * The status window's page (sandboxed; no Node, no electron). It renders only through textContent,
 * so nothing it shows can become markup. The live status from the agent arrives with the preload
 * API of the desktop-app issue; until then it says it is checking.
 */
const locale = pickLocale(navigator.language);
document.documentElement.lang = locale;
document.title = t('app.name', locale);
const fill = (id: string, text: string): void => {
  const element = document.getElementById(id);
  if (element) element.textContent = text;
};
fill('title', t('status.title', locale));
fill('tagline', t('app.tagline', locale));
fill('state', t('status.pending', locale));
