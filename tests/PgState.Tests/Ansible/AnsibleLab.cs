using System.Text.RegularExpressions;
using PgState.Engine.Host;
using PgState.Tests.Infrastructure;
using PgState.Tests.Snapshots;

namespace PgState.Tests.Ansible;

/// <summary>A fact that needs real Ansible and sshd, root (a user, sudoers, sshd) and the Native AOT binary; skipped with the reason otherwise.</summary>
public sealed class AnsibleFactAttribute : FactAttribute
{
    public AnsibleFactAttribute()
    {
        if (!ScratchCluster.IsRoot)
        {
            Skip = "needs root: the test makes a user, a sudoers drop-in and runs its own sshd (run scripts/test.sh as root)";
        }
        else if (!File.Exists("/usr/bin/ansible-playbook") || !File.Exists("/usr/sbin/sshd") || !File.Exists("/usr/bin/sudo"))
        {
            Skip = "needs Debian's ansible, openssh-server and sudo (scripts/test.sh installs them)";
        }
        else if (!PgStateBinary.IsNativeAot)
        {
            Skip = "needs the Native AOT pgstate that ships, a single file the module copies to the hosts (scripts/publish.sh; PGSTATE_BINARY)";
        }
    }
}

/// <summary>
/// Three database hosts on this machine (scripts/ansible-lab.sh): sshd on 127.0.0.1 from the lab's own
/// config, a non-root user with key auth and sudo, a scratch cluster and host directories per host,
/// an inventory of aliases of 127.0.0.1 and the collection built with ansible-galaxy. All removed at the end.
/// </summary>
public sealed partial class AnsibleLab : IAsyncLifetime
{
    public const int Hosts = 3;

    public string Dir { get; private set; } = "";

    public static string Playbook => Path.Combine(ExamplePlanSnapshotTests.RepositoryRoot, "examples", "gitops", "ansible", "pgstate.yml");

    private static string LabScript => Path.Combine(ExamplePlanSnapshotTests.RepositoryRoot, "scripts", "ansible-lab.sh");

    private bool Enabled => new AnsibleFactAttribute().Skip is null;

    public async Task InitializeAsync()
    {
        if (!Enabled)
        {
            return;
        }
        Dir = Directory.CreateTempSubdirectory("pgstate-ansible-").FullName;
        File.SetUnixFileMode(Dir, (UnixFileMode)0b111_101_101);
        var up = await ProcessRunner.Default.RunAsync("bash", [LabScript, "up", Dir, Hosts.ToString(System.Globalization.CultureInfo.InvariantCulture), PgStateBinary.Path],
            TimeSpan.FromMinutes(5), check: false);
        if (up.ExitCode != 0)
        {
            await DisposeAsync();
            throw new InvalidOperationException($"scripts/ansible-lab.sh up failed ({up.ExitCode}):\n{up.StandardError}");
        }
        // The secrets reach the playbook as the CI's environment would give them.
        File.WriteAllText(Path.Combine(Dir, "secrets.yml"), "pgstate_secrets:\n  PG_APP_PASSWORD: \"{{ lookup('env', 'PG_APP_PASSWORD') }}\"\n");
    }

    public async Task DisposeAsync()
    {
        if (Dir.Length > 0)
        {
            await ProcessRunner.Default.RunAsync("bash", [LabScript, "down", Dir], TimeSpan.FromMinutes(2), check: false);
        }
    }

    public string Socket(int host) => Path.Combine(Dir, $"db{host}", "cluster");

    public static int Port(int host) => 54320 + host;

    public string ConnectionString(int host) => $"Host={Socket(host)};Port={Port(host)};Username=postgres;Database=postgres;Pooling=false";

    /// <summary>Runs the example playbook over the inventory with the lab's ansible.cfg; the password comes from the environment.</summary>
    public async Task<ProcessResult> PlaybookAsync(string password, params string[] args)
    {
        var environment = new Dictionary<string, string?>
        {
            ["ANSIBLE_CONFIG"] = Path.Combine(Dir, "ansible.cfg"),
            ["HOME"] = Path.Combine(Dir, "controller-home"),
            ["ANSIBLE_NOCOLOR"] = "1",
            ["ANSIBLE_FORCE_COLOR"] = "0",
            ["PG_APP_PASSWORD"] = password,
        };
        return await ProcessRunner.Default.RunAsync("ansible-playbook", [Playbook, "-e", "@" + Path.Combine(Dir, "secrets.yml"), .. args],
            TimeSpan.FromMinutes(5), check: false, workingDirectory: Dir, environment: environment);
    }

    public sealed record Recap(int Ok, int Changed, int Unreachable, int Failed);

    /// <summary>The PLAY RECAP line of every host.</summary>
    public static IReadOnlyDictionary<string, Recap> Recaps(ProcessResult result)
    {
        var recaps = new Dictionary<string, Recap>();
        foreach (Match m in RecapLine().Matches(result.StandardOutput))
        {
            recaps[m.Groups["host"].Value] = new Recap(int.Parse(m.Groups["ok"].Value, System.Globalization.CultureInfo.InvariantCulture),
                int.Parse(m.Groups["changed"].Value, System.Globalization.CultureInfo.InvariantCulture),
                int.Parse(m.Groups["unreachable"].Value, System.Globalization.CultureInfo.InvariantCulture),
                int.Parse(m.Groups["failed"].Value, System.Globalization.CultureInfo.InvariantCulture));
        }
        Assert.True(recaps.Count == Hosts, $"expected a recap line for each of {Hosts} hosts:\n{result.StandardOutput}\n{result.StandardError}");
        return recaps;
    }

    [GeneratedRegex(@"^(?<host>db\d+)\s+:\s+ok=(?<ok>\d+)\s+changed=(?<changed>\d+)\s+unreachable=(?<unreachable>\d+)\s+failed=(?<failed>\d+)", RegexOptions.Multiline)]
    private static partial Regex RecapLine();
}
