using System.Text;
using CliWrap;
using CliWrap.Exceptions;
using PgState.Engine.Diagnostics;

namespace PgState.Engine.Host;

public sealed record ProcessResult(int ExitCode, string StandardOutput, string StandardError);

/// <summary>
/// The one door for child processes: an argument list (never a shell string), a timeout,
/// captured output, and an error naming the command and its exit code.
/// </summary>
public sealed class ProcessRunner
{
    public static ProcessRunner Default { get; } = new();

    // Environment variables that hold secrets (every fromEnv a manifest names, PGPASSWORD): never passed on to a
    // child unless given explicitly. A server restarted with pg_ctl keeps its environment until its next restart,
    // and its superusers can read it (/proc/PID/environ through pg_read_binary_file).
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte> Withheld = new(StringComparer.Ordinal) { ["PGPASSWORD"] = 0 };

    private static readonly string[] ServerVariables =
    [
        "PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_COLLATE", "LC_MESSAGES", "LC_MONETARY", "LC_NUMERIC", "LC_TIME", "TZ", "TZDIR",
        "HOME", "USER", "LOGNAME", "SHELL", "TMPDIR", "LD_LIBRARY_PATH", "PGSYSCONFDIR", "PGLOCALEDIR",
    ];

    // What systemd gives a service that sets none.
    private const string ServicePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /// <summary>The process environment, as the CLI reads it (what a server pgstate starts may keep of it).</summary>
    public static Func<string, string?> Environment { get; set; } = _ => null;

    /// <summary>Keeps an environment variable (a secret) from every child process pgstate starts.</summary>
    public static void Withhold(string name) => Withheld.TryAdd(name, 0);

    public async Task<ProcessResult> RunAsync(
        string program,
        IReadOnlyList<string> arguments,
        TimeSpan? timeout = null,
        bool check = true,
        string? workingDirectory = null,
        CancellationToken cancellationToken = default,
        IReadOnlyDictionary<string, string?>? environment = null,
        Action<string>? errorLines = null,
        bool serverEnvironment = false)
    {
        if (serverEnvironment)
        {
            // A server started from here keeps its environment for as long as it runs, readable by its superusers
            // (/proc/PID/environ): it gets what a service manager would give it (paths, locale, time zone), through
            // env -i, and nothing else of the operator's (cloud keys, tokens pgstate does not know about).
            var kept = ServerVariables.Select(n => (Name: n, Value: environment?.GetValueOrDefault(n) ?? Environment(n) ?? (n == "PATH" ? ServicePath : null)))
                .Where(v => v.Value is not null).Select(v => $"{v.Name}={v.Value}");
            arguments = ["-i", .. kept, program, .. arguments];
            program = "env";
            environment = null;
        }
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout ?? TimeSpan.FromMinutes(2));
        var command = Cli.Wrap(program)
            .WithArguments(arguments)
            .WithValidation(CommandResultValidation.None)
            .WithStandardOutputPipe(PipeTarget.ToStringBuilder(stdout))
            .WithStandardErrorPipe(errorLines is null ? PipeTarget.ToStringBuilder(stderr) : PipeTarget.Merge(PipeTarget.ToStringBuilder(stderr), PipeTarget.ToDelegate(errorLines)));
        if (workingDirectory is not null)
        {
            command = command.WithWorkingDirectory(workingDirectory);
        }
        // For secrets such as PGPASSWORD: passed in the child's environment, never on its command line; no other secret is.
        var childEnvironment = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var name in Withheld.Keys)
        {
            childEnvironment[name] = null;
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            childEnvironment[name] = value;
        }
        command = command.WithEnvironmentVariables(childEnvironment);
        CommandResult result;
        try
        {
            result = await command.ExecuteAsync(cts.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new PgStateException($"{Describe(program, arguments)} did not finish within {(timeout ?? TimeSpan.FromMinutes(2)).TotalSeconds:0}s");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new PgStateException($"cannot run {program}: {e.Message}");
        }
        catch (CliWrapException e)
        {
            throw new PgStateException($"cannot run {program}: {e.Message}");
        }
        var processResult = new ProcessResult(result.ExitCode, stdout.ToString(), stderr.ToString());
        if (check && result.ExitCode != 0)
        {
            var detail = processResult.StandardError.Trim();
            if (detail.Length == 0)
            {
                detail = processResult.StandardOutput.Trim();
            }
            throw new PgStateException($"{Describe(program, arguments)} exited with code {result.ExitCode}: {detail}");
        }
        return processResult;
    }

    public static string Describe(string program, IReadOnlyList<string> arguments) =>
        string.Join(' ', new[] { program }.Concat(arguments).Select(Quote));

    private static string Quote(string arg) =>
        arg.Length > 0 && arg.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:@%,+".Contains(c)) ? arg : "'" + arg.Replace("'", "'\\''") + "'";
}
