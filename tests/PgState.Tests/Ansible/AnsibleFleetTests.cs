using System.Security.Cryptography;
using Npgsql;
using PgState.Tests.Infrastructure;
using Snapshooter.Xunit;

namespace PgState.Tests.Ansible;

/// <summary>
/// The pgstate.pgstate collection with real Ansible over real SSH, on three hosts: check mode plans
/// (changed on all three), saved plans fetched and merged into one fleet comment, reviewed plans
/// applied (a stale one fails alone), convergence, no secret at -vvv.
/// </summary>
public class AnsibleFleetTests(AnsibleLab lab) : IClassFixture<AnsibleLab>
{
    private const string Password = "app-Pa55-cleartext-never-shown";

    private string PlanFile(int host) => Path.Combine(lab.Dir, "plans", $"db{host}.json");

    private async Task<string> ShowAsync(string setting, int host)
    {
        await using var connection = new NpgsqlConnection(lab.ConnectionString(host));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("select setting from pg_settings where name = $1", connection) { Parameters = { new() { Value = setting } } };
        return (string)(await command.ExecuteScalarAsync())!;
    }

    [AnsibleFact]
    public async Task Check_plans_every_host_reviewed_plans_apply_a_stale_one_fails_alone_and_a_second_run_changes_nothing()
    {
        // Pull request: plan everywhere, keep the saved plans.
        var check = await lab.PlaybookAsync(Password, "--check", "-e", "plans_dir=" + Path.Combine(lab.Dir, "plans"));
        Assert.True(check.ExitCode == 0, check.StandardOutput + check.StandardError);
        foreach (var (host, recap) in AnsibleLab.Recaps(check))
        {
            Assert.True(recap is { Changed: 1, Failed: 0, Unreachable: 0 }, $"{host}: {recap}\n{check.StandardOutput}");
        }
        for (var i = 1; i <= AnsibleLab.Hosts; i++)
        {
            Assert.True(File.Exists(PlanFile(i)), $"no saved plan for db{i}");
            Assert.Equal("0", await ShowAsync("archive_timeout", i)); // check mode changed nothing
            Assert.False(File.Exists(Path.Combine(lab.Dir, $"db{i}", "bin", "pgstate")), "check mode installed the binary");
            Assert.False(File.Exists(Path.Combine(lab.Dir, $"db{i}", "host", "etc", $"db{i}.yaml")), "check mode installed the manifest");
        }

        // One pull-request comment for the fleet, from the saved plans.
        var show = await PgStateBinary.RunAsync(["show", "--format", "markdown", PlanFile(1), PlanFile(2), PlanFile(3)]);
        Assert.True(show.ExitCode == 0, show.StandardError);
        Assert.StartsWith("### pgstate plan for 3 hosts\n\n**Fleet: 3 of 3 host(s) with changes", show.StandardOutput);
        Assert.DoesNotContain(Password, show.StandardOutput);
        Snapshot.Match(show.StandardOutput.Replace(lab.Dir, "<lab>", StringComparison.Ordinal).Split('\n'));

        // db3 changes after review: its plan is stale and must be refused; db1 and db2 apply theirs.
        await using (var db3 = new NpgsqlConnection(lab.ConnectionString(3)))
        {
            await db3.OpenAsync();
            await using var alter = new NpgsqlCommand("alter system set work_mem = '16MB'; select pg_reload_conf()", db3);
            await alter.ExecuteNonQueryAsync();
        }
        await Task.Delay(200);
        var merge = await lab.PlaybookAsync(Password, "-e", "reviewed_plans_dir=" + Path.Combine(lab.Dir, "plans"));
        Assert.Equal(2, merge.ExitCode); // a host failed
        var recaps = AnsibleLab.Recaps(merge);
        Assert.Equal(new AnsibleLab.Recap(1, 1, 0, 0), recaps["db1"]);
        Assert.Equal(new AnsibleLab.Recap(1, 1, 0, 0), recaps["db2"]);
        Assert.Equal(1, recaps["db3"].Failed);
        Assert.Contains("refusing to apply", merge.StandardOutput);
        Assert.Contains("settings.work_mem (its live state changed)", merge.StandardOutput);
        Assert.Equal("300", await ShowAsync("archive_timeout", 1));
        Assert.Equal("300", await ShowAsync("archive_timeout", 2));
        Assert.Equal("0", await ShowAsync("archive_timeout", 3));
        Assert.Equal("16384", await ShowAsync("work_mem", 3));
        Assert.False(File.Exists(Path.Combine(lab.Dir, "db3", "host", "etc", "db3.yaml")), "a refused apply installed the manifest");

        // The binary and manifest are where the backup schedules expect them, with the controller's bytes.
        var binary = Path.Combine(lab.Dir, "db1", "bin", "pgstate");
        Assert.Equal(Sha(PgStateBinary.Path), Sha(binary));
        Assert.Equal(File.ReadAllText(Path.Combine(lab.Dir, "hosts", "db1.yaml")), File.ReadAllText(Path.Combine(lab.Dir, "db1", "host", "etc", "db1.yaml")));
        var installedAt = File.GetLastWriteTimeUtc(binary);

        // A fresh plan-and-apply converges db3; the others have nothing left to do.
        var apply = await lab.PlaybookAsync(Password);
        Assert.True(apply.ExitCode == 0, apply.StandardOutput + apply.StandardError);
        recaps = AnsibleLab.Recaps(apply);
        Assert.Equal(0, recaps["db1"].Changed);
        Assert.Equal(0, recaps["db2"].Changed);
        Assert.Equal(1, recaps["db3"].Changed);
        Assert.Equal("8192", await ShowAsync("work_mem", 3));

        // A second run, checked and applied, changes nothing; the binary was not copied again.
        foreach (var args in new[] { new[] { "--check" }, Array.Empty<string>() })
        {
            var again = await lab.PlaybookAsync(Password, args);
            Assert.True(again.ExitCode == 0, again.StandardOutput + again.StandardError);
            Assert.All(AnsibleLab.Recaps(again).Values, r => Assert.Equal(new AnsibleLab.Recap(1, 0, 0, 0), r));
        }
        Assert.Equal(installedAt, File.GetLastWriteTimeUtc(binary));
    }

    [AnsibleFact]
    public async Task Nothing_at_vvv_shows_the_secret_and_no_file_keeps_it()
    {
        var secret = "vvv-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        var run = await lab.PlaybookAsync(secret, "--check", "--diff", "-vvv");
        Assert.True(run.ExitCode == 0, run.StandardOutput + run.StandardError);
        AnsibleLab.Recaps(run);
        // The arguments were printed (masked), and pgstate really ran with the secret: the plan names the role.
        Assert.Contains("VALUE_SPECIFIED_IN_NO_LOG_PARAMETER", run.StandardOutput);
        Assert.Contains("roles.app_rw", run.StandardOutput);
        Assert.DoesNotContain(secret, run.StandardOutput + run.StandardError);

        // An apply at -vvv too (with the lab's own password, so the fleet stays as the other tests expect it).
        var apply = await lab.PlaybookAsync(Password, "-vvv");
        Assert.True(apply.ExitCode == 0, apply.StandardOutput + apply.StandardError);
        Assert.Contains("VALUE_SPECIFIED_IN_NO_LOG_PARAMETER", apply.StandardOutput);
        Assert.DoesNotContain(Password, apply.StandardOutput + apply.StandardError);
        foreach (var where in new[] { "remote-tmp", "local-tmp", "home", "controller-home", "plans", "db1/host", "db2/host", "db3/host" })
        {
            var dir = Path.Combine(lab.Dir, where);
            if (!Directory.Exists(dir))
            {
                continue;
            }
            foreach (var file in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Where(f => new FileInfo(f).Length < 8 * 1024 * 1024))
            {
                Assert.DoesNotContain(secret, File.ReadAllText(file));
                Assert.DoesNotContain(Password, File.ReadAllText(file));
            }
        }
    }

    [AnsibleFact]
    public async Task The_built_collection_documents_the_module_for_ansible_doc()
    {
        var doc = await PgState.Engine.Host.ProcessRunner.Default.RunAsync("ansible-doc", ["pgstate.pgstate.pgstate"], TimeSpan.FromMinutes(1), check: false,
            environment: new Dictionary<string, string?> { ["ANSIBLE_CONFIG"] = Path.Combine(lab.Dir, "ansible.cfg"), ["HOME"] = Path.Combine(lab.Dir, "controller-home"), ["ANSIBLE_NOCOLOR"] = "1" });
        Assert.True(doc.ExitCode == 0, doc.StandardError);
        foreach (var expected in new[] { "PGSTATE.PGSTATE.PGSTATE", "manifest", "saved_plan", "fetch_plan", "secrets", "EXAMPLES:", "RETURN VALUES:", "plan_changed" })
        {
            Assert.Contains(expected, doc.StandardOutput);
        }
    }

    private static string Sha(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));
}
