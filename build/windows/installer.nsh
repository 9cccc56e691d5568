; Sekimori (関守): electron-builder NSIS include (electron-builder.yml `nsis.include`).
;
; UNTESTED ON WINDOWS. The build machines are Linux containers without makensis or Windows; this
; script is checked statically by test/build/windows-installer.test.ts (commands present, every
; path quoted, the /CONFIG path never reaching a command line). Prove it on a Windows VM before the
; first deployment (build/windows/README.md lists what to check).
;
; What it adds to electron-builder's per-machine, one-click installer:
;   - install-time configuration, copied into %ProgramData%\Sekimori\agent\config.json:
;       Setup.exe /S /CONFIG="\\server\share\sekimori\sekimori.json"
;       Setup.exe /S /SERVERURL=https://… /ENROLLTOKEN=… /TIER=lgwan /POLICYPUBLICKEY=…
;     or, with neither, sekimori.json next to the installer; the wrapped MSI passes its
;     properties CONFIG, SERVERURL, ENROLLTOKEN, TIER, POLICYPUBLICKEY as these switches;
;   - %ProgramData%\Sekimori owned by Administrators, readable and writable by SYSTEM and
;     Administrators only (icacls, by SID: account names are localized);
;   - the agent as the Windows service "sekimori-agent" (LocalSystem, automatic start, restart on
;     failure), run by the WinSW service host next to the agent's own node.exe;
;   - the app's auto-start for every user session (HKLM Run);
;   - on uninstall (administrators only: the per-machine uninstaller elevates, and refuses to run
;     otherwise): the service and the auto-start entry removed; the state directory (journal,
;     credentials) kept.
;
; Exit codes of a failed silent install: 2 bad command line or config, 3 ACL, 4 service registration.

!include LogicLib.nsh
!include FileFunc.nsh

!define SEKIMORI_SERVICE "sekimori-agent"
!define SEKIMORI_RUN_KEY "Software\Microsoft\Windows\CurrentVersion\Run"
!define SEKIMORI_RUN_VALUE "Sekimori"
; The app's flag for a start by the logon (the Linux autostart entry passes the same).
!define SEKIMORI_AUTOSTART_ARG "--autostart"
; Well-known SIDs: LocalSystem and BUILTIN\Administrators.
!define SEKIMORI_SID_SYSTEM "*S-1-5-18"
!define SEKIMORI_SID_ADMINS "*S-1-5-32-544"
; Characters each installer property may contain (the values are written into JSON without escaping).
; ($$ is a literal $ in NSIS.)
!define SEKIMORI_URL_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$$&'()*+,;=%"
!define SEKIMORI_TOKEN_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
!define SEKIMORI_KEY_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
; Never in a /CONFIG= path: wildcards (CopyFiles would expand them), quotes and what Windows forbids.
!define SEKIMORI_PATH_FORBIDDEN '*?"<>|'

; _SekimoriCharIn CHAR SET RESULT: RESULT is "yes" when CHAR is one of the characters of SET, else "no".
!macro _SekimoriCharIn CHAR SET RESULT
  Push $9
  Push $8
  Push $7
  Push $6
  StrCpy $7 "no"
  StrLen $8 "${SET}"
  IntOp $8 $8 - 1
  ${For} $9 0 $8
    StrCpy $6 "${SET}" 1 $9
    ${If} $6 S== "${CHAR}"
      StrCpy $7 "yes"
    ${EndIf}
  ${Next}
  StrCpy ${RESULT} $7
  Pop $6
  Pop $7
  Pop $8
  Pop $9
!macroend

!ifndef BUILD_UNINSTALLER
  Var sekimoriConfig
  Var sekimoriServerUrl
  Var sekimoriToken
  Var sekimoriTier
  Var sekimoriKey
  Var sekimoriData

  ; Push value, Push a set of characters, Push "only" or "none", Call SekimoriCheckChars, Pop
  ; result: "ok" when every character of value is in the set ("only") or none is ("none"), else
  ; "bad". Case-sensitive.
  Function SekimoriCheckChars
    Exch $R2 ; mode
    Exch
    Exch $R1 ; set
    Exch 2
    Exch $R0 ; value
    Push $R3
    Push $R4
    Push $R5
    Push $R6
    Push $R7
    StrCpy $R6 "ok"
    StrLen $R3 $R0
    IntOp $R3 $R3 - 1
    ${If} $R3 >= 0
      ${For} $R4 0 $R3
        StrCpy $R5 $R0 1 $R4
        !insertmacro _SekimoriCharIn $R5 $R1 $R7
        ${If} $R2 == "only"
        ${AndIf} $R7 == "no"
          StrCpy $R6 "bad"
        ${ElseIf} $R2 == "none"
        ${AndIf} $R7 == "yes"
          StrCpy $R6 "bad"
        ${EndIf}
      ${Next}
    ${EndIf}
    StrCpy $R1 $R6
    Pop $R7
    Pop $R6
    Pop $R5
    Pop $R4
    Pop $R3
    Pop $R0
    Pop $R2
    Exch $R1
  FunctionEnd
!endif

; Fails a silent or interactive install with a message and an exit code.
!macro SekimoriFail CODE MESSAGE
  SetErrorLevel ${CODE}
  MessageBox MB_OK|MB_ICONSTOP "${MESSAGE}" /SD IDOK
  Quit
!macroend

; Installer .onInit: read and check the command line before anything is installed, and stop the
; running service so its files can be replaced (the Windows device-installation policies it wrote
; stay in force while it is stopped).
!macro customInit
  Push $0
  Push $1
  ${GetParameters} $0
  ClearErrors
  ${GetOptions} $0 "/CONFIG=" $sekimoriConfig
  ${If} ${Errors}
    StrCpy $sekimoriConfig ""
  ${EndIf}
  ClearErrors
  ${GetOptions} $0 "/SERVERURL=" $sekimoriServerUrl
  ${If} ${Errors}
    StrCpy $sekimoriServerUrl ""
  ${EndIf}
  ClearErrors
  ${GetOptions} $0 "/ENROLLTOKEN=" $sekimoriToken
  ${If} ${Errors}
    StrCpy $sekimoriToken ""
  ${EndIf}
  ClearErrors
  ${GetOptions} $0 "/TIER=" $sekimoriTier
  ${If} ${Errors}
    StrCpy $sekimoriTier ""
  ${EndIf}
  ClearErrors
  ${GetOptions} $0 "/POLICYPUBLICKEY=" $sekimoriKey
  ${If} ${Errors}
    StrCpy $sekimoriKey ""
  ${EndIf}
  ClearErrors

  ${If} $sekimoriConfig != ""
    ${If} $sekimoriServerUrl != ""
    ${OrIf} $sekimoriToken != ""
    ${OrIf} $sekimoriTier != ""
    ${OrIf} $sekimoriKey != ""
      !insertmacro SekimoriFail 2 "Sekimori: give /CONFIG= or /SERVERURL= /ENROLLTOKEN= /TIER= /POLICYPUBLICKEY=, not both."
    ${EndIf}
    ; A path only: no wildcards (CopyFiles would expand them) and no quotes.
    Push $sekimoriConfig
    Push `${SEKIMORI_PATH_FORBIDDEN}`
    Push "none"
    Call SekimoriCheckChars
    Pop $1
    ${If} $1 != "ok"
      !insertmacro SekimoriFail 2 "Sekimori: /CONFIG= must be a file path without wildcards or quotes."
    ${EndIf}
    ; Relative to the installer's folder unless absolute (X:\… or \\server\…).
    StrCpy $1 $sekimoriConfig 1 1
    ${If} $1 != ":"
      StrCpy $1 $sekimoriConfig 2
      ${If} $1 != "\\"
        StrCpy $sekimoriConfig "$EXEDIR\$sekimoriConfig"
      ${EndIf}
    ${EndIf}
    ${IfNot} ${FileExists} "$sekimoriConfig"
    ${OrIf} ${FileExists} "$sekimoriConfig\*.*"
      !insertmacro SekimoriFail 2 "Sekimori: the /CONFIG= file does not exist: $sekimoriConfig"
    ${EndIf}
  ${ElseIf} $sekimoriServerUrl != ""
  ${OrIf} $sekimoriToken != ""
  ${OrIf} $sekimoriTier != ""
  ${OrIf} $sekimoriKey != ""
    ${If} $sekimoriServerUrl == ""
      !insertmacro SekimoriFail 2 "Sekimori: /SERVERURL= is required with the other properties."
    ${EndIf}
    StrCpy $1 $sekimoriServerUrl 8
    ${If} $1 != "https://"
      StrCpy $1 $sekimoriServerUrl 7
      ${If} $1 != "http://"
        !insertmacro SekimoriFail 2 "Sekimori: /SERVERURL= must start with https:// (or http://)."
      ${EndIf}
    ${EndIf}
    Push $sekimoriServerUrl
    Push "${SEKIMORI_URL_CHARS}"
    Push "only"
    Call SekimoriCheckChars
    Pop $1
    ${If} $1 != "ok"
      !insertmacro SekimoriFail 2 "Sekimori: /SERVERURL= contains a character a URL may not (use punycode for Japanese domain names)."
    ${EndIf}
    Push $sekimoriToken
    Push "${SEKIMORI_TOKEN_CHARS}"
    Push "only"
    Call SekimoriCheckChars
    Pop $1
    ${If} $1 != "ok"
      !insertmacro SekimoriFail 2 "Sekimori: /ENROLLTOKEN= must be the token exactly as sekimori-server printed it."
    ${EndIf}
    Push $sekimoriKey
    Push "${SEKIMORI_KEY_CHARS}"
    Push "only"
    Call SekimoriCheckChars
    Pop $1
    ${If} $1 != "ok"
      !insertmacro SekimoriFail 2 "Sekimori: /POLICYPUBLICKEY= must be base64 (SPKI DER)."
    ${EndIf}
    ${If} $sekimoriTier != ""
    ${AndIf} $sekimoriTier S!= "mynumber"
    ${AndIf} $sekimoriTier S!= "lgwan"
    ${AndIf} $sekimoriTier S!= "internet"
      !insertmacro SekimoriFail 2 "Sekimori: /TIER= must be mynumber, lgwan or internet."
    ${EndIf}
  ${ElseIf} ${FileExists} "$EXEDIR\sekimori.json"
    StrCpy $sekimoriConfig "$EXEDIR\sekimori.json"
  ${EndIf}

  ; Stop the service of a previous installation (its node.exe is about to be replaced).
  nsExec::ExecToLog '"$SYSDIR\sc.exe" query ${SEKIMORI_SERVICE}'
  Pop $1
  ${If} $1 == 0
    nsExec::ExecToLog '"$SYSDIR\net.exe" stop ${SEKIMORI_SERVICE}'
    Pop $1
  ${EndIf}
  Pop $1
  Pop $0
!macroend

; After the app's files are installed: state directory and its ACL, config, service, auto-start.
!macro customInstall
  Push $0
  Push $1

  ; --- %ProgramData%\Sekimori: Administrators own it (a folder a user created there before the
  ; install loses that user's rights), SYSTEM and Administrators have full control, nobody else
  ; any access; everything inside inherits that.
  ReadEnvStr $sekimoriData "ProgramData"
  ${If} $sekimoriData == ""
    !insertmacro SekimoriFail 3 "Sekimori: %ProgramData% is not set."
  ${EndIf}
  CreateDirectory "$sekimoriData\Sekimori\agent"
  nsExec::ExecToLog '"$SYSDIR\icacls.exe" "$sekimoriData\Sekimori" /setowner ${SEKIMORI_SID_ADMINS} /T /C /Q'
  Pop $0
  ${If} $0 != 0
    !insertmacro SekimoriFail 3 "Sekimori: icacls /setowner failed ($0) on $sekimoriData\Sekimori"
  ${EndIf}
  nsExec::ExecToLog '"$SYSDIR\icacls.exe" "$sekimoriData\Sekimori" /inheritance:r /grant:r ${SEKIMORI_SID_SYSTEM}:(OI)(CI)F ${SEKIMORI_SID_ADMINS}:(OI)(CI)F /Q'
  Pop $0
  ${If} $0 != 0
    !insertmacro SekimoriFail 3 "Sekimori: icacls /grant failed ($0) on $sekimoriData\Sekimori"
  ${EndIf}
  nsExec::ExecToLog '"$SYSDIR\icacls.exe" "$sekimoriData\Sekimori\*" /reset /T /C /Q'
  Pop $0

  ; --- install-time configuration → %ProgramData%\Sekimori\agent\config.json (the agent deletes
  ; the token from it once spent). An existing config is replaced only when one is given.
  ${If} $sekimoriConfig != ""
    ClearErrors
    CopyFiles /SILENT /FILESONLY "$sekimoriConfig" "$sekimoriData\Sekimori\agent\config.json.new"
    ${If} ${Errors}
      !insertmacro SekimoriFail 2 "Sekimori: could not copy $sekimoriConfig"
    ${EndIf}
    Delete "$sekimoriData\Sekimori\agent\config.json"
    Rename "$sekimoriData\Sekimori\agent\config.json.new" "$sekimoriData\Sekimori\agent\config.json"
    DetailPrint "Sekimori: installed the configuration from $sekimoriConfig"
  ${ElseIf} $sekimoriServerUrl != ""
    StrCpy $1 '{"serverUrl": "$sekimoriServerUrl"'
    ${If} $sekimoriToken != ""
      StrCpy $1 '$1, "enrollToken": "$sekimoriToken"'
    ${EndIf}
    ${If} $sekimoriTier != ""
      StrCpy $1 '$1, "tier": "$sekimoriTier"'
    ${EndIf}
    ${If} $sekimoriKey != ""
      StrCpy $1 '$1, "policyPublicKey": "$sekimoriKey"'
    ${EndIf}
    ClearErrors
    FileOpen $0 "$sekimoriData\Sekimori\agent\config.json.new" w
    FileWrite $0 '$1}$\r$\n'
    FileClose $0
    ${If} ${Errors}
      !insertmacro SekimoriFail 2 "Sekimori: could not write the configuration."
    ${EndIf}
    Delete "$sekimoriData\Sekimori\agent\config.json"
    Rename "$sekimoriData\Sekimori\agent\config.json.new" "$sekimoriData\Sekimori\agent\config.json"
    DetailPrint "Sekimori: wrote the configuration from the installer properties"
  ${EndIf}
  nsExec::ExecToLog '"$SYSDIR\icacls.exe" "$sekimoriData\Sekimori\*" /reset /T /C /Q'
  Pop $0

  ; --- the agent service: WinSW (the service host) starts the agent's own node.exe; LocalSystem,
  ; automatic start, restarted 5 s after a failure. binPath is quoted (an unquoted path with
  ; spaces is a privilege-escalation hole).
  nsExec::ExecToLog '"$SYSDIR\sc.exe" query ${SEKIMORI_SERVICE}'
  Pop $0
  ${If} $0 == 0
    nsExec::ExecToLog '"$SYSDIR\sc.exe" config ${SEKIMORI_SERVICE} binPath= "\"$INSTDIR\resources\agent\sekimori-agent-service.exe\"" start= auto obj= LocalSystem'
  ${Else}
    nsExec::ExecToLog '"$SYSDIR\sc.exe" create ${SEKIMORI_SERVICE} binPath= "\"$INSTDIR\resources\agent\sekimori-agent-service.exe\"" start= auto obj= LocalSystem DisplayName= "Sekimori agent"'
  ${EndIf}
  Pop $0
  ${If} $0 != 0
    !insertmacro SekimoriFail 4 "Sekimori: sc.exe could not register the service ($0)."
  ${EndIf}
  nsExec::ExecToLog '"$SYSDIR\sc.exe" description ${SEKIMORI_SERVICE} "Sekimori (関守): USB device control, lock and audit journal"'
  Pop $0
  nsExec::ExecToLog '"$SYSDIR\sc.exe" failure ${SEKIMORI_SERVICE} reset= 86400 actions= restart/5000/restart/5000/restart/5000'
  Pop $0
  ${If} $0 != 0
    !insertmacro SekimoriFail 4 "Sekimori: sc.exe failure could not set the restart actions ($0)."
  ${EndIf}
  ; Also restart when the service stops with an error code, not only when it crashes.
  nsExec::ExecToLog '"$SYSDIR\sc.exe" failureflag ${SEKIMORI_SERVICE} 1'
  Pop $0
  nsExec::ExecToLog '"$SYSDIR\sc.exe" start ${SEKIMORI_SERVICE}'
  Pop $0
  ${If} $0 != 0
    DetailPrint "Sekimori: the service did not start now ($0); it starts at the next boot."
  ${EndIf}

  ; --- the app in every user session, from the next logon: HKLM (per machine), so a standard user
  ; cannot delete the entry (disabling an all-users entry in Task Manager's Startup tab should need
  ; an administrator too: to be confirmed on Windows, build/windows/README.md checklist). The path
  ; is quoted (it has a space); --autostart tells the app it
  ; was started by the logon, not by the user. The 64-bit registry view is already selected
  ; (electron-builder's check64BitAndSetRegView runs before customInit and in un.onInit), so the
  ; value is in the native Run key, not WOW6432Node. Removed by customUnInstall below.
  ClearErrors
  WriteRegStr HKLM "${SEKIMORI_RUN_KEY}" "${SEKIMORI_RUN_VALUE}" '"$INSTDIR\${APP_EXECUTABLE_FILENAME}" ${SEKIMORI_AUTOSTART_ARG}'
  ${If} ${Errors}
    DetailPrint "Sekimori: could not write the auto-start entry HKLM\${SEKIMORI_RUN_KEY}\${SEKIMORI_RUN_VALUE}."
  ${EndIf}

  Pop $1
  Pop $0
!macroend

; Uninstaller .onInit (after electron-builder's per-machine elevation): administrators only, and
; the service stopped before its files are removed (also on an upgrade, which runs this uninstaller).
!macro customUnInit
  Push $0
  ${IfNot} ${UAC_IsAdmin}
    SetErrorLevel 740 ; ERROR_ELEVATION_REQUIRED
    MessageBox MB_OK|MB_ICONSTOP "Sekimori can only be uninstalled by an administrator." /SD IDOK
    Quit
  ${EndIf}
  nsExec::ExecToLog '"$SYSDIR\net.exe" stop ${SEKIMORI_SERVICE}'
  Pop $0
  Pop $0
!macroend

!macro customUnInstall
  ${IfNot} ${isUpdated}
    Push $0
    nsExec::ExecToLog '"$SYSDIR\sc.exe" delete ${SEKIMORI_SERVICE}'
    Pop $0
    DeleteRegValue HKLM "${SEKIMORI_RUN_KEY}" "${SEKIMORI_RUN_VALUE}"
    DetailPrint "Sekimori: the agent's state in %ProgramData%\Sekimori was kept (delete it as an administrator to forget this terminal)."
    Pop $0
  ${EndIf}
!macroend
