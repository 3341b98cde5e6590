; Inno Setup script: a per-user installer for Windows (no administrator rights needed).
;   iscc /DAppVersion=0.1.0 /DSourceDir=build\dist\Marginalia /DOutputDir=dist packaging\windows\marginalia.iss
; Upgrades install over the previous version in place (same AppId); user data, settings and models live
; in the user's own folders (%LOCALAPPDATA%\Marginalia, the registry's Marginalia key) and are never
; touched by installing, upgrading or uninstalling.

#ifndef AppVersion
  #define AppVersion "0.0.0"
#endif
#ifndef SourceDir
  #define SourceDir "..\..\build\dist\Marginalia"
#endif
#ifndef OutputDir
  #define OutputDir "..\..\dist"
#endif

[Setup]
AppId={{6F1E2C3A-8B4D-4E5F-9A61-3C2B7D8E9F10}
AppName=Marginalia
AppVersion={#AppVersion}
AppVerName=Marginalia {#AppVersion}
AppPublisher=The Marginalia authors
DefaultDirName={autopf}\Marginalia
DefaultGroupName=Marginalia
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#OutputDir}
OutputBaseFilename=Marginalia-Setup-{#AppVersion}
SetupIconFile=..\icons\marginalia.ico
UninstallDisplayIcon={app}\Marginalia.exe
Compression=lzma2/normal
SolidCompression=no
WizardStyle=modern
CloseApplications=yes
RestartApplications=no

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[InstallDelete]
; An upgrade replaces the program folder's libraries wholesale: stale ones from the previous version must not
; shadow the new ones. Only {app} is cleared; user data lives elsewhere.
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\Marginalia"; Filename: "{app}\Marginalia.exe"
Name: "{autodesktop}\Marginalia"; Filename: "{app}\Marginalia.exe"; Tasks: desktopicon

[Registry]
; "Open with Marginalia" for a project's database file (projects are folders holding project.sqlite).
Root: HKCU; Subkey: "Software\Classes\Applications\Marginalia.exe\shell\open\command"; ValueType: string; ValueData: """{app}\Marginalia.exe"" gui ""%1"""; Flags: uninsdeletekey
Root: HKCU; Subkey: "Software\Classes\.sqlite\OpenWithList\Marginalia.exe"; ValueType: string; ValueData: ""; Flags: uninsdeletekey

[Run]
Filename: "{app}\Marginalia.exe"; Description: "{cm:LaunchProgram,Marginalia}"; Flags: nowait postinstall skipifsilent
