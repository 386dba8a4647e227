using System.Text;
using PgState.Engine.Host;

namespace PgState.Tests.Infrastructure;

/// <summary>
/// Runs the job a rendered schedule describes the way its scheduler would, without that scheduler:
/// a .service file as systemd runs it (User=, Group=, Environment=, LoadCredential= copied into a
/// credentials directory, an otherwise empty environment, working directory /), or a cron.d line
/// as cron runs it (/bin/sh -c as the line's user, cron's environment). The parsers are strict: a
/// character systemd or cron would read differently from what pgstate meant fails the test.
/// </summary>
public static class ScheduledJob
{
    /// <summary>systemd 252's PATH for system services.</summary>
    public const string SystemdPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    public sealed record ServiceUnit(string User, string Group, IReadOnlyList<string> ExecStart, IReadOnlyDictionary<string, string> Environment,
        IReadOnlyList<(string Id, string Path)> Credentials);

    public static ServiceUnit ParseService(string path)
    {
        string? user = null, group = null;
        IReadOnlyList<string>? exec = null;
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        var credentials = new List<(string, string)>();
        var section = "";
        foreach (var raw in File.ReadAllLines(path))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] is '#' or ';')
            {
                continue;
            }
            if (line.StartsWith('['))
            {
                section = line;
                continue;
            }
            if (section != "[Service]")
            {
                continue;
            }
            var eq = line.IndexOf('=', StringComparison.Ordinal);
            var (key, value) = (line[..eq].Trim(), line[(eq + 1)..].Trim());
            switch (key)
            {
                case "User": user = Specifiers(value); break;
                case "Group": group = Specifiers(value); break;
                case "ExecStart":
                    Assert.True(exec is null, $"{path}: more than one ExecStart=");
                    Assert.False(value.Length > 0 && "@-:+!".Contains(value[0]), $"{path}: ExecStart= has a prefix pgstate does not write: {value}");
                    exec = Words(value);
                    break;
                case "Environment":
                    foreach (var word in Words(value))
                    {
                        var i = word.IndexOf('=', StringComparison.Ordinal);
                        environment[word[..i]] = word[(i + 1)..];
                    }
                    break;
                case "LoadCredential":
                    var colon = value.IndexOf(':', StringComparison.Ordinal);
                    credentials.Add((value[..colon], Specifiers(value[(colon + 1)..])));
                    break;
                case "Type": Assert.Equal("oneshot", value); break;
                default: Assert.Fail($"{path}: [Service] {key}= is not emulated by this test helper; teach it first"); break;
            }
        }
        Assert.NotNull(exec);
        return new ServiceUnit(user ?? "root", group ?? user ?? "root", exec!, environment, credentials);
    }

    /// <summary>Runs a .service's ExecStart as systemd would start it (needs root).</summary>
    public static async Task<ProcessResult> RunServiceAsync(string servicePath, TimeSpan? timeout = null)
    {
        var unit = ParseService(servicePath);
        var account = Account(unit.User);
        var credentials = Directory.CreateTempSubdirectory("pgstate-credentials-").FullName;
        try
        {
            // systemd (as root) copies each LoadCredential= source into a directory only the service's user reads.
            foreach (var (id, source) in unit.Credentials)
            {
                var target = Path.Combine(credentials, id);
                File.Copy(source, target);
                Posix.Chown(target, account.Uid, account.Gid);
                File.SetUnixFileMode(target, UnixFileMode.UserRead);
            }
            Posix.Chown(credentials, account.Uid, account.Gid);
            File.SetUnixFileMode(credentials, UnixFileMode.UserRead | UnixFileMode.UserExecute);
            var environment = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["PATH"] = SystemdPath,
                ["USER"] = unit.User,
                ["LOGNAME"] = unit.User,
                ["HOME"] = account.Home,
                ["SHELL"] = account.Shell,
                ["INVOCATION_ID"] = Guid.NewGuid().ToString("N"),
            };
            if (unit.Credentials.Count > 0)
            {
                environment["CREDENTIALS_DIRECTORY"] = credentials;
            }
            foreach (var (k, v) in unit.Environment)
            {
                environment[k] = v;
            }
            return await RunAsync(unit.User, unit.Group, environment, unit.ExecStart, "/", timeout);
        }
        finally
        {
            Directory.Delete(credentials, recursive: true);
        }
    }

    /// <summary>Runs every job line of a cron.d file as cron would (needs root).</summary>
    public static async Task<ProcessResult> RunCronAsync(string cronPath, TimeSpan? timeout = null)
    {
        var assignments = new Dictionary<string, string>(StringComparer.Ordinal);
        (string User, string Command)? job = null;
        foreach (var raw in File.ReadAllLines(cronPath))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }
            var fields = line.Split((char[])[' ', '\t'], 7, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 7 && line.Contains('=', StringComparison.Ordinal))
            {
                var i = line.IndexOf('=', StringComparison.Ordinal);
                assignments[line[..i].Trim()] = line[(i + 1)..].Trim();
                continue;
            }
            Assert.True(job is null, $"{cronPath}: more than one job line");
            Assert.Equal(7, fields.Length);
            job = (fields[5], CronCommand(fields[6]));
        }
        Assert.NotNull(job);
        var account = Account(job!.Value.User);
        var environment = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["SHELL"] = "/bin/sh",
            ["HOME"] = account.Home,
            ["LOGNAME"] = job.Value.User,
            ["PATH"] = "/usr/bin:/bin",
        };
        foreach (var (k, v) in assignments)
        {
            environment[k] = v;
        }
        var group = Posix.GroupName(account.Gid) ?? job.Value.User;
        return await RunAsync(job.Value.User, group, environment, [environment["SHELL"], "-c", job.Value.Command], account.Home, timeout);
    }

    public sealed record PasswdEntry(uint Uid, uint Gid, string Home, string Shell);

    /// <summary>The user's /etc/passwd entry (systemd and cron take HOME and SHELL from it).</summary>
    public static PasswdEntry Account(string name)
    {
        var fields = File.ReadLines("/etc/passwd").Select(l => l.Split(':')).FirstOrDefault(f => f.Length >= 7 && f[0] == name)
            ?? throw new InvalidOperationException($"no user {name} in /etc/passwd");
        return new PasswdEntry(uint.Parse(fields[2], System.Globalization.CultureInfo.InvariantCulture), uint.Parse(fields[3], System.Globalization.CultureInfo.InvariantCulture), fields[5], fields[6]);
    }

    /// <summary>Runs argv as user:group with exactly this environment (env -i, setpriv), as a scheduler does.</summary>
    public static Task<ProcessResult> RunAsync(string user, string group, IReadOnlyDictionary<string, string> environment, IReadOnlyList<string> argv,
        string workingDirectory, TimeSpan? timeout)
    {
        List<string> args = ["-i", .. environment.Select(e => $"{e.Key}={e.Value}"),
            "setpriv", $"--reuid={user}", $"--regid={group}", "--init-groups", "--inh-caps=-all", "--", .. argv];
        return ProcessRunner.Default.RunAsync("env", args, timeout ?? TimeSpan.FromMinutes(2), check: false,
            workingDirectory: Directory.Exists(workingDirectory) ? workingDirectory : "/");
    }

    /// <summary>cron turns an unescaped % into a newline (the rest is stdin) and \% into %.</summary>
    private static string CronCommand(string command)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < command.Length; i++)
        {
            if (command[i] == '\\' && i + 1 < command.Length && command[i + 1] == '%')
            {
                sb.Append('%');
                i++;
                continue;
            }
            Assert.False(command[i] == '%', $"unescaped % in a cron command (cron would cut the command there): {command}");
            sb.Append(command[i]);
        }
        return sb.ToString();
    }

    /// <summary>Unit-file specifiers: %% is a %, and pgstate writes no other specifier.</summary>
    private static string Specifiers(string value)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < value.Length; i++)
        {
            if (value[i] == '%')
            {
                Assert.True(i + 1 < value.Length && value[i + 1] == '%', $"systemd would expand a specifier in: {value}");
                i++;
            }
            sb.Append(value[i]);
        }
        return sb.ToString();
    }

    /// <summary>Splits a command line as systemd does: quotes, C escapes, %% and $$.</summary>
    public static IReadOnlyList<string> Words(string line)
    {
        var words = new List<string>();
        var i = 0;
        while (true)
        {
            while (i < line.Length && char.IsWhiteSpace(line[i]))
            {
                i++;
            }
            if (i >= line.Length)
            {
                return words;
            }
            var word = new StringBuilder();
            char? quote = null;
            for (; i < line.Length; i++)
            {
                var c = line[i];
                if (quote is null && char.IsWhiteSpace(c))
                {
                    break;
                }
                if (c is '"' or '\'' && (quote is null || quote == c))
                {
                    quote = quote is null ? c : null;
                    continue;
                }
                if (c == '\\')
                {
                    var n = line[++i];
                    word.Append(n switch { 'n' => '\n', 't' => '\t', '\\' or '"' or '\'' or ' ' => n, _ => throw new InvalidOperationException($"escape \\{n} not emulated: {line}") });
                    continue;
                }
                if (c is '%' or '$')
                {
                    Assert.True(i + 1 < line.Length && line[i + 1] == c, $"systemd would expand {c} in: {line}");
                    i++;
                }
                word.Append(c);
            }
            Assert.True(quote is null, $"unterminated quote in: {line}");
            words.Add(word.ToString());
        }
    }
}
