#!/bin/bash
# postrm of the desktop app's .deb (electron-builder `deb.afterRemove`): electron-builder's own step
# (its templates/linux/after-remove.tpl). The auto-start entry /etc/xdg/autostart/sekimori-app.desktop
# is a file of the package: dpkg removes it on remove and must keep it on upgrade (this script also
# runs then, after the new files are unpacked), so it is not touched here. Syntax checked in
# test/build/electron-builder-config.test.ts; not run here.

# Delete the link to the binary
if type update-alternatives >/dev/null 2>&1; then
    update-alternatives --remove '${executable}' '/usr/bin/${executable}'
else
    rm -f '/usr/bin/${executable}'
fi
