#!/bin/bash
# postrm of the desktop app's .deb (electron-builder `deb.afterRemove`): electron-builder's own step
# (its templates/linux/after-remove.tpl) plus removing the auto-start entry. Untested here.

# Delete the link to the binary
if type update-alternatives >/dev/null 2>&1; then
    update-alternatives --remove '${executable}' '/usr/bin/${executable}'
else
    rm -f '/usr/bin/${executable}'
fi

rm -f '/etc/xdg/autostart/${executable}.desktop'
