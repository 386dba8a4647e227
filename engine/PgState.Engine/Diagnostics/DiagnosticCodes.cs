namespace PgState.Engine.Diagnostics;

/// <summary>A stable diagnostic code and what it means. Every code is declared once, in <see cref="DiagnosticCodes"/>.</summary>
public sealed record DiagnosticCode(string Id, string Meaning)
{
    public override string ToString() => Id;
}

/// <summary>
/// The registry of diagnostic codes: one code, one meaning. A test checks that no id is declared
/// twice and that no source file writes a PGS id anywhere else.
/// </summary>
public static class DiagnosticCodes
{
    // Manifest files and YAML (0xx)
    public static readonly DiagnosticCode YamlSyntax = new("PGS001", "YAML syntax error");
    public static readonly DiagnosticCode UnknownAlias = new("PGS002", "an alias names no anchor");
    public static readonly DiagnosticCode MappingKeyNotScalar = new("PGS003", "a mapping key is not a plain value");
    public static readonly DiagnosticCode DuplicateKey = new("PGS004", "a key appears twice in one mapping");
    public static readonly DiagnosticCode BadEnvReference = new("PGS005", "a ${env:NAME} reference is malformed");
    public static readonly DiagnosticCode EnvNotSet = new("PGS006", "an environment variable a manifest references is not set");
    public static readonly DiagnosticCode CannotReadManifest = new("PGS007", "a manifest file cannot be read");
    public static readonly DiagnosticCode HostDeclaredTwice = new("PGS008", "two documents declare the same host");
    public static readonly DiagnosticCode NoHostDocument = new("PGS009", "no PostgresHost document was found");
    public static readonly DiagnosticCode Schema = new("PGS010", "the document does not match the manifest schema");
    public static readonly DiagnosticCode DocumentNotMapping = new("PGS011", "a document is not a mapping");
    public static readonly DiagnosticCode NoSuchManifest = new("PGS012", "a manifest path names no file or directory");
    public static readonly DiagnosticCode EmptyManifestDirectory = new("PGS013", "a manifest directory holds no *.yaml file");
    public static readonly DiagnosticCode ManifestNotRegular = new("PGS014", "a manifest path is not a regular file (FIFO, device …)");
    public static readonly DiagnosticCode ManifestTooLarge = new("PGS015", "a manifest file is larger than pgstate reads");
    public static readonly DiagnosticCode YamlTooDeep = new("PGS016", "YAML nesting is deeper than pgstate reads");
    public static readonly DiagnosticCode YamlTooManyNodes = new("PGS017", "a document expands (aliases included) to more nodes than pgstate reads");
    public static readonly DiagnosticCode ValueTooLong = new("PGS018", "a value is longer than its field allows");
    public static readonly DiagnosticCode ControlCharacter = new("PGS019", "a value holds a control character (newline, tab, NUL …)");
    public static readonly DiagnosticCode SecretNotSet = new("PGS020", "a secret's environment variable or file is not available");
    public static readonly DiagnosticCode BadDuration = new("PGS021", "a duration is out of range");
    public static readonly DiagnosticCode BadSize = new("PGS022", "a size is out of range");
    public static readonly DiagnosticCode DataDirectoryMismatch = new("PGS023", "spec.dataDirectory is not the server's data directory");
    public static readonly DiagnosticCode UnsafePath = new("PGS024", "a path is one pgstate refuses to manage (/, a system directory …)");
    public static readonly DiagnosticCode ConflictingFacts = new("PGS025", "two sections disagree about one fact");
    public static readonly DiagnosticCode UnsupportedServer = new("PGS026", "the server's version is not one this pgstate knows");
    public static readonly DiagnosticCode BadTimestamp = new("PGS027", "a timestamp cannot be read");
    public static readonly DiagnosticCode BadCalendar = new("PGS028", "a schedule is not a valid systemd OnCalendar expression");

    // Archiving and settings (1xx)
    public static readonly DiagnosticCode ParameterTwice = new("PGS101", "a server parameter is set by two sections");
    public static readonly DiagnosticCode BadParameterName = new("PGS102", "not a valid parameter name");
    public static readonly DiagnosticCode ArchiveCommandWithoutPath = new("PGS103", "an archive_command lacks %p");
    public static readonly DiagnosticCode FieldOfOtherMethod = new("PGS104", "a field belongs to another archiving method");
    public static readonly DiagnosticCode MethodFieldMissing = new("PGS105", "an archiving method lacks the field it needs");
    public static readonly DiagnosticCode BadSettingValue = new("PGS106", "a setting value is malformed before any server sees it");
    public static readonly DiagnosticCode UnknownParameter = new("PGS110", "the server does not know a parameter");
    public static readonly DiagnosticCode ReadOnlyParameter = new("PGS111", "a parameter is read-only");
    public static readonly DiagnosticCode InvalidParameterValue = new("PGS112", "the server would reject a parameter value");
    public static readonly DiagnosticCode StanzaMismatch = new("PGS113", "the archiving stanza differs from spec.pgbackrest's");

    // pg_hba (2xx)
    public static readonly DiagnosticCode BadHbaRule = new("PGS201", "an hba rule is not one PostgreSQL accepts");
    public static readonly DiagnosticCode HbaTokenUnsafe = new("PGS202", "an hba field holds characters pg_hba.conf cannot carry");
    public static readonly DiagnosticCode HbaUnknownOption = new("PGS203", "an hba option is not one PostgreSQL knows");
    public static readonly DiagnosticCode HbaPositionWithoutBlock = new("PGS204", "spec.hba.position needs mode managed-block");
    public static readonly DiagnosticCode HbaCommentMarker = new("PGS205", "an hba comment would be read as the managed block's marker");

    // Directories and SELinux (3xx)
    public static readonly DiagnosticCode DirectoryTwice = new("PGS301", "a directory is listed twice");
    public static readonly DiagnosticCode BadFileContextRegex = new("PGS302", "a file-context path is not a valid regular expression");
    public static readonly DiagnosticCode FileContextTwice = new("PGS303", "a file context is listed twice");

    // Roles and slots (4xx)
    public static readonly DiagnosticCode RoleTwice = new("PGS401", "a role is listed twice");
    public static readonly DiagnosticCode PasswordSourceCount = new("PGS402", "a password needs exactly one source");
    public static readonly DiagnosticCode SlotTwice = new("PGS403", "a slot is listed twice");
    public static readonly DiagnosticCode LogicalSlotIncomplete = new("PGS404", "a logical slot lacks its plugin or database");
    public static readonly DiagnosticCode PhysicalSlotExtra = new("PGS406", "a physical slot has logical-only fields");
    public static readonly DiagnosticCode RolePasswordUnavailable = new("PGS405", "a role's password cannot be read");

    // Backups, schedules, drills (5xx)
    public static readonly DiagnosticCode BackupTwice = new("PGS501", "a backup is listed twice");
    public static readonly DiagnosticCode CompressionNeedsTar = new("PGS502", "compression needs the tar format");
    public static readonly DiagnosticCode CronCannotSchedule = new("PGS503", "cron cannot express a schedule");
    public static readonly DiagnosticCode BadSchedule = new("PGS504", "a backup schedule is not a valid OnCalendar expression");
    public static readonly DiagnosticCode UnsafeSchedulePath = new("PGS505", "a path written into a unit or cron file has characters those files cannot carry");
    public static readonly DiagnosticCode BadDrill = new("PGS506", "a restore drill setting is invalid");
    public static readonly DiagnosticCode DrillTargetFormat = new("PGS507", "a drill target is not latest, a timestamp with a time zone, or DURATION ago");
    public static readonly DiagnosticCode DrillTargetBeforeBackup = new("PGS508", "a drill target lies before every backup that could reach it");
    public static readonly DiagnosticCode DrillProbeNotSelect = new("PGS509", "a drill probe is not one read-only query");
    public static readonly DiagnosticCode DrillWorkDirectory = new("PGS510", "a drill work directory is the data directory, inside it, or inside the archive");

    // pgBackRest (6xx)
    public static readonly DiagnosticCode PgBackRestRepoType = new("PGS601", "a pgBackRest repository type is unknown or lacks its fields");
    public static readonly DiagnosticCode PgBackRestRetention = new("PGS602", "a pgBackRest retention would keep no backup");
    public static readonly DiagnosticCode PgBackRestProcessMax = new("PGS603", "pgBackRest's process-max exceeds the host's cores");
    public static readonly DiagnosticCode PgBackRestBadStanza = new("PGS604", "a stanza name has characters pgBackRest rejects");
    public static readonly DiagnosticCode PgBackRestPathInData = new("PGS605", "a pgBackRest repository or spool path overlaps the data directory");
    public static readonly DiagnosticCode PgBackRestBadOption = new("PGS606", "a pgBackRest pass-through option is malformed or set twice");
    public static readonly DiagnosticCode PgBackRestBackupNeedsSection = new("PGS607", "a backup with tool pgbackrest needs spec.pgbackrest");
}
