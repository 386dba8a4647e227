using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using PgState.Engine.Diagnostics;
using PgState.Engine.Host;

namespace PgState.Modules.Backups;

/// <summary>
/// The server log of a restore, read as it grows (never whole): which segments came from the
/// archive, where redo ended, the last transaction, the new timeline, and the lines that say why
/// a server stopped.
/// </summary>
public sealed partial class ServerLog(string path)
{
    private const int MaxLineLength = 2000;
    private readonly Queue<string> _recent = new();
    private readonly List<string> _problems = [];
    private readonly StringBuilder _partial = new();
    private long _offset;

    public string Path => path;

    /// <summary>Distinct segments restored from the archive, in order (a segment read again is counted once).</summary>
    public long SegmentsRestored { get; private set; }

    public string? FirstSegment { get; private set; }

    public string? LastSegment { get; private set; }

    public ulong? RedoStart { get; private set; }

    public ulong? RedoDone { get; private set; }

    public DateTimeOffset? LastTransaction { get; private set; }

    /// <summary>"recovery stopping before commit of transaction 745, time …" when a target stopped recovery.</summary>
    public string? Stopping { get; private set; }

    public string? NewTimeline { get; private set; }

    public bool ShutDown { get; private set; }

    /// <summary>The server said it accepts (read-write) connections: recovery is over.</summary>
    public bool Promoted { get; private set; }

    /// <summary>FATAL, PANIC and ERROR lines (the first 20).</summary>
    public IReadOnlyList<string> Problems => _problems;

    /// <summary>The last lines read.</summary>
    public IReadOnlyList<string> Recent => [.. _recent];

    /// <summary>Reads what was appended since the last call.</summary>
    public void Read()
    {
        if (!File.Exists(path))
        {
            return;
        }
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        if (stream.Length < _offset)
        {
            _offset = 0;
        }
        stream.Seek(_offset, SeekOrigin.Begin);
        var buffer = new byte[64 * 1024];
        int n;
        var decoder = Encoding.UTF8.GetDecoder();
        var chars = new char[Encoding.UTF8.GetMaxCharCount(buffer.Length)];
        while ((n = stream.Read(buffer, 0, buffer.Length)) > 0)
        {
            _offset += n;
            var count = decoder.GetChars(buffer, 0, n, chars, 0);
            for (var i = 0; i < count; i++)
            {
                if (chars[i] == '\n')
                {
                    Line(_partial.ToString());
                    _partial.Clear();
                }
                else if (_partial.Length < MaxLineLength)
                {
                    _partial.Append(chars[i]);
                }
            }
        }
    }

    internal void Line(string line)
    {
        _recent.Enqueue(line);
        if (_recent.Count > 15)
        {
            _recent.Dequeue();
        }
        Match m;
        if ((m = Restored().Match(line)).Success)
        {
            var name = m.Groups[1].Value;
            if (LastSegment is null || string.CompareOrdinal(name, LastSegment) > 0)
            {
                SegmentsRestored++;
                FirstSegment ??= name;
                LastSegment = name;
            }
        }
        else if ((m = RedoStarts().Match(line)).Success && Lsn.TryParse(m.Groups[1].Value, out var start))
        {
            RedoStart = start;
        }
        else if ((m = RedoDoneAt().Match(line)).Success && Lsn.TryParse(m.Groups[1].Value, out var done))
        {
            RedoDone = done;
        }
        else if ((m = LastCompleted().Match(line)).Success && DateTimeOffset.TryParse(m.Groups[1].Value, CultureInfo.InvariantCulture, DateTimeStyles.None, out var tx))
        {
            LastTransaction = tx;
        }
        else if ((m = StoppingAt().Match(line)).Success)
        {
            Stopping = m.Groups[1].Value.Trim();
        }
        else if ((m = Timeline().Match(line)).Success)
        {
            NewTimeline = m.Groups[1].Value;
        }
        else if (line.Contains("database system is shut down", StringComparison.Ordinal))
        {
            ShutDown = true;
        }
        else if (line.Contains("database system is ready to accept connections", StringComparison.Ordinal))
        {
            // Not "ready to accept read-only connections" (hot standby): recovery ended and the server promoted.
            Promoted = true;
        }
        if (_problems.Count < 20 && (line.Contains("FATAL:", StringComparison.Ordinal) || line.Contains("PANIC:", StringComparison.Ordinal) || line.Contains("ERROR:", StringComparison.Ordinal)))
        {
            _problems.Add(line.Trim());
        }
    }

    /// <summary>The lines that explain a failure: the FATAL/PANIC/ERROR lines, else the last lines.</summary>
    public string Quote()
    {
        var lines = _problems.Count > 0 ? _problems : [.. _recent.TakeLast(8)];
        return lines.Count == 0 ? "(the server log is empty)" : string.Join("\n    ", lines.Select(l => l.Trim()));
    }

    [GeneratedRegex("restored log file \"([0-9A-F]{24})\" from archive")]
    private static partial Regex Restored();

    [GeneratedRegex(@"redo starts at ([0-9A-F]+/[0-9A-F]+)")]
    private static partial Regex RedoStarts();

    [GeneratedRegex(@"redo done at ([0-9A-F]+/[0-9A-F]+)")]
    private static partial Regex RedoDoneAt();

    [GeneratedRegex(@"last completed transaction was at log time (.+)$")]
    private static partial Regex LastCompleted();

    [GeneratedRegex(@"LOG:\s+(recovery stopping .+)$")]
    private static partial Regex StoppingAt();

    [GeneratedRegex(@"selected new timeline ID: ([0-9]+)")]
    private static partial Regex Timeline();
}

/// <summary>What postmaster.pid says: the postmaster's pid and status (starting, standby, ready, stopping), and whether it still runs.</summary>
public sealed record PostmasterState(bool PidFile, int Pid, string Status, bool Alive);

/// <summary>
/// A postmaster started for a restore on a copy: the server's own pg_ctl, run as the data
/// directory's owner, with settings given on its command line (they win over every file the backup
/// brought). Started without waiting; the caller polls.
/// </summary>
public sealed class TemporaryServer(string pgCtl, string dataDirectory, string logFile, IReadOnlyList<(string Name, string Value)> settings,
    ProcessRunner processes)
{
    public string DataDirectory => dataDirectory;

    public string LogFile => logFile;

    /// <summary>pg_ctl passes -o to /bin/sh: each word is single-quoted.</summary>
    public static string Options(IReadOnlyList<(string Name, string Value)> settings) =>
        string.Join(' ', settings.Select(s => "-c " + ShellQuote($"{s.Name}={s.Value}")));

    public static string ShellQuote(string value) => "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        // -W: return at once; the caller watches recovery (progress, bounded wait, precise failure).
        var result = await PgCtlAsync(["start", "-W", "-D", dataDirectory, "-l", logFile, "-o", Options(settings)], TimeSpan.FromMinutes(1), cancellationToken);
        if (result.ExitCode != 0)
        {
            throw new PgStateException($"pg_ctl start exited with code {result.ExitCode}: {(result.StandardError + result.StandardOutput).Trim()}");
        }
    }

    public PostmasterState State()
    {
        var pidFile = System.IO.Path.Combine(dataDirectory, "postmaster.pid");
        string[] lines;
        try
        {
            lines = File.Exists(pidFile) ? File.ReadAllLines(pidFile) : [];
        }
        catch (IOException)
        {
            lines = [];
        }
        if (lines.Length == 0 || !int.TryParse(lines[0].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
        {
            return new PostmasterState(false, 0, "", false);
        }
        var status = lines.Length >= 8 ? lines[7].Trim() : "starting";
        return new PostmasterState(true, pid, status, Posix.ProcessExists(pid));
    }

    /// <summary>Stops the server: fast (or immediate, for a copy about to be removed: no shutdown checkpoint), then immediate if that does not finish. Safe to call when it is not running.</summary>
    public async Task StopAsync(bool immediate = false)
    {
        if (!State().PidFile)
        {
            return;
        }
        var fast = await PgCtlAsync(["stop", "-D", dataDirectory, "-m", immediate ? "immediate" : "fast", "-w", "-t", "60"], TimeSpan.FromSeconds(70), CancellationToken.None);
        if (fast.ExitCode != 0 && State() is { PidFile: true, Alive: true })
        {
            await PgCtlAsync(["stop", "-D", dataDirectory, "-m", "immediate", "-w", "-t", "30"], TimeSpan.FromSeconds(40), CancellationToken.None);
        }
    }

    private Task<ProcessResult> PgCtlAsync(IReadOnlyList<string> args, TimeSpan timeout, CancellationToken cancellationToken) =>
        processes.RunAsync(pgCtl, args, timeout, check: false, cancellationToken: cancellationToken, serverEnvironment: true);

    /// <summary>
    /// What a restore's server is always given on its command line, whatever the copied
    /// configuration says: its own directory, socket and port, no TCP, no archiving into production's
    /// archive, no replication from production, no command that reaches outside (recovery_end_command,
    /// archive_cleanup_command), messages in English at a level the log reader needs.
    /// </summary>
    public static List<(string Name, string Value)> IsolationSettings(string dataDirectory, string socketDirectory, int port, string hbaFile, string identFile, int major) =>
    [
        ("data_directory", dataDirectory),
        ("config_file", System.IO.Path.Combine(dataDirectory, "postgresql.conf")),
        ("hba_file", hbaFile),
        ("ident_file", identFile),
        ("external_pid_file", ""),
        ("port", port.ToString(CultureInfo.InvariantCulture)),
        ("listen_addresses", ""),
        ("unix_socket_directories", socketDirectory),
        ("unix_socket_permissions", "0700"),
        ("archive_mode", "off"),
        ("archive_command", ""),
        .. major >= 15 ? new[] { ("archive_library", "") } : [],
        ("recovery_end_command", ""),
        ("archive_cleanup_command", ""),
        ("primary_conninfo", ""),
        ("primary_slot_name", ""),
        ("synchronous_standby_names", ""),
        ("hot_standby", "off"),
        ("logging_collector", "off"),
        ("log_destination", "stderr"),
        ("lc_messages", "C"),
        ("log_min_messages", "warning"),
        ("restart_after_crash", "off"),
        ("ssl", "off"),
        ("cluster_name", "pgstate-drill"),
        ("shared_buffers", "128MB"),
        ("huge_pages", "off"),
        .. major < 15 ? new[] { ("stats_temp_directory", "pg_stat_tmp") } : [],
    ];
}
